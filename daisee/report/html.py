"""The report as one standalone HTML page: inline CSS, inline SVG charts, no script, nothing fetched.

Chart points carry `data-series` and `data-interval`, member bars `data-member` and `data-part`, so a test
(or a curious PMO) can find them. Every text shown goes through `html.escape`.
"""

from __future__ import annotations

import math
import time
from html import escape

from daisee.report.data import LoopReport, money, percent

_WIDTH, _HEIGHT = 800, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 12, 12, 34
_BAR_HEIGHT, _BAR_GAP, _LABEL_WIDTH = 14, 12, 140
SERIES = ("production", "consumption", "self-consumed")

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
.meta { color: #555; } .rates strong { font-size: 1.2rem; } .warning { color: #8a4b00; font-weight: bold; }
svg { width: 100%; height: auto; } svg text { font-size: 11px; fill: #444; }
.axis { stroke: #999; } .grid { stroke: #e5e5e5; }
.production { stroke: #e69f00; fill: #e69f00; } .consumption { stroke: #0072b2; fill: #0072b2; }
polyline.production, polyline.consumption { fill: none; stroke-width: 2; }
.self-consumed { fill: #009e73; stroke: #009e73; } polygon.self-consumed { fill-opacity: 0.35; stroke: none; }
.local { fill: #009e73; } .grid-import { fill: #999; } .sold { fill: #e69f00; } .exported { fill: #f0d090; }
.legend span { display: inline-block; margin-right: 1.2rem; }
.legend .production { background: #e69f00; } .legend .consumption { background: #0072b2; }
.legend .self-consumed, .legend .local { background: #009e73; } .legend .grid-import { background: #999; }
.legend .sold { background: #e69f00; } .legend .exported { background: #f0d090; }
.legend i { display: inline-block; width: 0.8rem; height: 0.8rem; margin-right: 0.3rem; vertical-align: middle; }
table { border-collapse: collapse; margin-top: 0.5rem; } th, td { padding: 0.25rem 0.7rem; white-space: nowrap; }
th { border-bottom: 1px solid #999; text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #f6f6f6; } code { font-size: 0.85em; }
"""


def render_html(report: LoopReport) -> str:
    """The whole page: header and rates, the interval curves, member bars, member table and ledger."""
    title = f"daisee loop {report.address}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        _header(report),
        "<h2>Production and consumption per interval (kWh)</h2>",
        _legend(("production", "production"), ("consumption", "consumption"), ("self-consumed", "self-consumed")),
        _curves(report),
        "<h2>Members (kWh)</h2>",
        _legend(("local", "consumed from the loop"), ("grid-import", "from the grid"))
        + _legend(("sold", "produced, sold in the loop"), ("exported", "exported to the grid")),
        _bars(report),
        _member_table(report),
        "<h2>Ledger</h2>",
        _ledger_table(report),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def escaped(value: object) -> str:
    """`value` as HTML text or an attribute's value."""
    return escape(str(value), quote=True)


_e = escaped  # the page's many texts


def _header(report: LoopReport) -> str:
    rates = (
        f"self-consumption <strong>{percent(report.self_consumption)}</strong> of local production used in the loop; "
        f"self-sufficiency <strong>{percent(report.self_sufficiency)}</strong> of consumption from the loop"
    )
    generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    meta = (
        f"chain id {_e(report.chain_id)}, blocks {_e(report.from_block)}-{_e(report.block)}; "
        f"{len(report.members)} meters, {len(report.intervals)} settled intervals of {_e(report.interval_seconds)} s; "
        f"key {_e(report.key.name.lower())}, {_e(report.price_per_wh)} ledger units per Wh; generated {generated}"
    )
    warnings = "".join(f'<p class="warning">warning: {_e(w)}</p>' for w in report.warnings)
    return f'<p class="meta">{meta}</p><p class="rates">{rates}</p>{warnings}'


def _legend(*items: tuple[str, str]) -> str:
    spans = "".join(f'<span><i class="{_e(cls)}"></i>{_e(text)}</span>' for cls, text in items)
    return f'<p class="legend">{spans}</p>'


def _curves(report: LoopReport) -> str:
    """Loop production and consumption as lines, the self-consumed part as a filled area."""
    intervals = report.intervals
    if not intervals:
        return "<p>No settled interval yet.</p>"
    totals = [report.interval_totals(t) for t in intervals]
    values = {
        "production": [r.produced for r in totals],
        "consumption": [r.consumed for r in totals],
        "self-consumed": [r.allocated for r in totals],
    }
    top = max(1, *values["production"], *values["consumption"])
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM

    def x(i: int) -> float:
        return _LEFT + (i + 0.5) * plot_w / len(intervals)

    def y(wh: int) -> float:
        return _TOP + plot_h * (1 - wh / top)

    out = [f'<svg viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="production and consumption per interval">']
    for fraction in (0, 0.5, 1):
        gy = y(round(top * fraction))
        out.append(f'<line class="grid" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{gy:.1f}" y2="{gy:.1f}"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end">{top * fraction / 1000:.2f}</text>')
    step = math.ceil(len(intervals) / 12)
    for i in range(0, len(intervals), step):
        out.append(f'<text x="{x(i):.1f}" y="{_HEIGHT - 14}" text-anchor="middle">{_e(intervals[i])}</text>')
    out.append(f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_HEIGHT - 1}" text-anchor="middle">interval</text>')
    out.append(f'<line class="axis" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>')

    area = [f"{x(0):.1f},{y(0):.1f}"] + [f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values["self-consumed"])]
    area.append(f"{x(len(intervals) - 1):.1f},{y(0):.1f}")
    out.append(f'<polygon class="self-consumed" points="{" ".join(area)}"/>')
    for series in ("production", "consumption"):
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values[series]))
        out.append(f'<polyline class="{series}" points="{points}"/>')
    for series in SERIES:
        for i, (t, v) in enumerate(zip(intervals, values[series], strict=True)):
            start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(report.genesis + t * report.interval_seconds))
            out.append(
                f'<circle class="{series}" data-series="{series}" data-interval="{_e(t)}" data-wh="{_e(v)}" '
                f'cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5"><title>interval {_e(t)} ({_e(start)}): '
                f"{_e(series)} {v / 1000:.3f} kWh</title></circle>"
            )
    out.append("</svg>")
    return "\n".join(out)


def _bars(report: LoopReport) -> str:
    """Per member: consumed split local/grid, produced split sold/exported."""
    rows = report.billing()
    top = max([1] + [int(r["consumed_wh"]) for r in rows] + [int(r["produced_wh"]) for r in rows])
    bar_w = _WIDTH - _LABEL_WIDTH - _RIGHT - 70
    row_h = 2 * _BAR_HEIGHT + _BAR_GAP
    out = [f'<svg viewBox="0 0 {_WIDTH} {max(1, len(rows)) * row_h}" role="img" aria-label="energy per member">']
    for n, (m, row) in enumerate(zip(report.members, rows, strict=True)):
        y0 = n * row_h
        out.append(f'<text x="0" y="{y0 + _BAR_HEIGHT + 4}">{_e(m.label)}</text>')
        for line, (parts, total) in enumerate(
            (
                ((("local", row["allocated_wh"]), ("grid-import", row["grid_wh"])), row["consumed_wh"]),
                ((("sold", row["sold_wh"]), ("exported", row["exported_wh"])), row["produced_wh"]),
            )
        ):
            y = y0 + line * _BAR_HEIGHT
            left = float(_LABEL_WIDTH)
            for part, wh in parts:
                width = bar_w * int(wh) / top
                out.append(
                    f'<rect class="{part}" data-member="{_e(m.id_hex)}" data-part="{part}" data-wh="{_e(wh)}" '
                    f'x="{left:.1f}" y="{y}" width="{width:.1f}" height="{_BAR_HEIGHT - 2}">'
                    f"<title>{_e(m.label)}: {part} {int(wh) / 1000:.3f} kWh</title></rect>"
                )
                left += width
            if int(total):
                out.append(f'<text x="{left + 4:.1f}" y="{y + _BAR_HEIGHT - 3}">{int(total) / 1000:.2f}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _member_table(report: LoopReport) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in ("meter", "kind", "payout", "produced", "consumed", "self-consumed", "grid", "surplus", "money")
    )
    body = []
    for m, row in zip(report.members, report.billing(), strict=True):
        energy = "".join(
            f'<td class="n">{int(row[k]) / 1000:.2f}</td>'
            for k in ("produced_wh", "consumed_wh", "allocated_wh", "grid_wh", "exported_wh")
        )
        body.append(
            f'<tr><td title="{_e(m.id_hex)}">{_e(m.label)}{"" if m.active else " (removed)"}</td>'
            f'<td>{_e(row["kind"])}</td><td title="{_e(m.payout)}"><code>{_e(m.payout[:8])}…</code></td>{energy}'
            f'<td class="n">{_e(money(int(row["balance"])))}</td></tr>'
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _ledger_table(report: LoopReport) -> str:
    body = []
    for account, net in report.ledger.items():
        a = report.accounts.get(account)
        cells = "".join(
            f'<td class="n">{_e(money(units))}</td>' for units in ((a.balance, -a.debt, a.receivable) if a else ())
        )
        body.append(
            f"<tr><td><code>{_e(account)}</code></td><td>{_e(', '.join(report.roles(account)))}</td>"
            f'{cells}<td class="n">{_e(money(net))}</td></tr>'
        )
    total = sum(report.ledger.values())
    return (
        "<table><caption>balance may be withdrawn; debt is owed to the loop, receivable by it</caption>"
        "<thead><tr><th>account</th><th>role</th><th>balance</th><th>debt</th><th>receivable</th><th>net</th></tr>"
        f"</thead><tbody>{''.join(body)}</tbody><tfoot><tr><td>the loop holds</td><td></td>"
        f'<td class="n">{_e(money(report.held))}</td><td></td><td></td><td class="n">{_e(money(total))}</td></tr>'
        "</tfoot></table>"
    )
