"""How the régie logs: one line per event on the `daisee.regie` logger (see `daisee.event_log`)."""

from __future__ import annotations

from daisee.event_log import event_logger

log_event = event_logger("daisee.regie")
