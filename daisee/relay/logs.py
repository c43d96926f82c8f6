"""How the relay logs: one line per event on the `daisee.relay` logger (see `daisee.event_log`)."""

from __future__ import annotations

import logging

from daisee.event_log import event_logger

logger = logging.getLogger("daisee.relay")
log_event = event_logger("daisee.relay")
