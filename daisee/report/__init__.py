"""Reports on a loop, read from the chain: terminal tables, a standalone HTML page, CSV for billing."""

from daisee.report.data import LoopReport, Member, Tokens, build_report

__all__ = ["LoopReport", "Member", "Tokens", "build_report"]
