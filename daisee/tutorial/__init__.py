"""`daisee tutorial`: one whole loop, one step at a time, for real on a chain."""

from daisee.tutorial.runner import run_tutorial
from daisee.tutorial.steps import STEPS

__all__ = ["STEPS", "run_tutorial"]
