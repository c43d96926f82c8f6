"""How the relay logs: one line per event, `event=name key=value …`, and nothing secret."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

from daisee.chain.connect import redact
from daisee.errors import DaiseeError

logger = logging.getLogger("daisee.relay")


def _value(value: object) -> str:
    text = str(value)
    return text if text and not any(c.isspace() or c in '"=' for c in text) else json.dumps(text)


def log_event(event: str, level: int = logging.INFO, **fields: object) -> None:
    """Log `event=… key=value …`; values with spaces are quoted."""
    if logger.isEnabledFor(level):
        logger.log(level, " ".join([f"event={event}", *(f"{key}={_value(v)}" for key, v in fields.items())]))


def describe_error(exc: BaseException, url: str | None) -> str:
    """One line for `exc`, with the RPC URL's credentials, path and query removed (they may hold an API key)."""
    text = str(exc) if isinstance(exc, DaiseeError) else f"{type(exc).__name__}: {exc}"
    if url:
        text = text.replace(url, redact(url))
        parts = urlsplit(url)
        for secret in (parts.path, parts.query, parts.username, parts.password):
            if secret and secret != "/":
                text = text.replace(secret, "…")
    return " ".join(text.split())
