"""How daisee's services log: one line per event, `event=name key=value …`, and nothing secret."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

LogEvent = Callable[..., None]  # log_event(event, level=logging.INFO, **fields)


def _value(value: object) -> str:
    text = str(value)
    return text if text and not any(c.isspace() or c in '"=' for c in text) else json.dumps(text)


def event_logger(name: str) -> LogEvent:
    """A function that logs `event=… key=value …` to the logger `name`; values with spaces are quoted."""
    logger = logging.getLogger(name)

    def log_event(event: str, level: int = logging.INFO, **fields: object) -> None:
        if logger.isEnabledFor(level):
            logger.log(level, " ".join([f"event={event}", *(f"{key}={_value(v)}" for key, v in fields.items())]))

    return log_event
