"""The model's reverts, named after the contract's custom errors."""

from __future__ import annotations


class ModelRevert(Exception):  # noqa: N818 - mirrors a revert, not a Python error
    """What the contract would revert with: the custom error's name and its arguments (`.args`)."""

    def __init__(self, name: str, *args: object) -> None:
        super().__init__(*args)
        self.name = name

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(repr, self.args))})"
