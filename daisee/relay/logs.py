"""How the relay logs: one line per event, `event=name key=value …`, and nothing secret."""

from __future__ import annotations

import json
import logging

logger = logging.getLogger("daisee.relay")


def _value(value: object) -> str:
    text = str(value)
    return text if text and not any(c.isspace() or c in '"=' for c in text) else json.dumps(text)


def log_event(event: str, level: int = logging.INFO, **fields: object) -> None:
    """Log `event=… key=value …`; values with spaces are quoted."""
    if logger.isEnabledFor(level):
        logger.log(level, " ".join([f"event={event}", *(f"{key}={_value(v)}" for key, v in fields.items())]))
