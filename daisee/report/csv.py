"""The report as CSV for the PMO's billing: one row per member, or one row per interval and meter."""

from __future__ import annotations

import csv
import io

from daisee.report.data import LoopReport

INTERVAL_FIELDS = (
    "interval",
    "start",
    "meter_id",
    "consumed_wh",
    "allocated_wh",
    "produced_wh",
    "sold_wh",
    "cost",
    "revenue",
)


def billing_csv(report: LoopReport) -> str:
    """A header then one row per member: energy in Wh, cost, revenue and balance in ledger units."""
    out = io.StringIO()
    writer = csv.DictWriter(out, LoopReport.BILLING_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(report.billing())
    return out.getvalue()


def intervals_csv(report: LoopReport) -> str:
    """A header then one row per settled interval and meter; `start` is the interval's Unix time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(INTERVAL_FIELDS)
    for t in report.intervals:
        start = report.genesis + t * report.interval_seconds
        for m in report.members:
            r = report.settlements[t].get(m.meter_id)
            if r is not None:
                writer.writerow((t, start, m.id_hex, r.consumed, r.allocated, r.produced, r.sold, r.cost, r.revenue))
    return out.getvalue()
