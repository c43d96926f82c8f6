"""Where commands print: rich tables for people, JSON for scripts, errors on stderr."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hexbytes import HexBytes
from rich.console import Console
from rich.markup import escape
from web3.types import TxReceipt

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, nothing else."""
    print(json.dumps(data, indent=2, default=str))


def print_error(message: str) -> None:
    """`error: message` on stderr; the message is plain text (`[loop]` stays `[loop]`, never rich markup)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


@contextmanager
def log_to_stderr(*names: str) -> Iterator[None]:
    """The INFO lines of these loggers on stderr (`time LEVEL logger message`), for the command's lifetime."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def sent(receipt: TxReceipt) -> dict[str, Any]:
    """A transaction as the commands' JSON shows it."""
    return {"tx_hash": HexBytes(receipt["transactionHash"]).to_0x_hex(), "gas_used": int(receipt["gasUsed"])}
