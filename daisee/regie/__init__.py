"""The régie de données: the loop's data service (indexer, curves in civil time, pages, exports)."""
