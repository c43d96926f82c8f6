"""Move a development chain's clock forward (see `daisee.chain.clock`)."""

from __future__ import annotations

from daisee.chain.clock import advance_to as travel_to
from daisee.chain.clock import chain_time as now

__all__ = ["now", "travel_to"]
