"""Flexibility: the loop's forecast, the signal it publishes from it, and a planner for shiftable tasks."""
