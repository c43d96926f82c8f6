"""The `daisee` command line: thin commands over the library."""

from daisee.cli.app import cli, main

__all__ = ["cli", "main"]
