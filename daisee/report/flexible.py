"""The flexible demo's day as one standalone HTML page, in the loop report's style: the loop's rates with and
without the signal, each household's bill, and the appliances the signal moved. Every text is escaped."""

from __future__ import annotations

from typing import Any

from daisee.report.html import CSS
from daisee.report.html import escaped as _e

RATES = {
    "self_consumption": "self-consumption: local production used in the loop",
    "self_sufficiency": "self-sufficiency: consumption supplied by the loop",
}


def render_flexible_html(summary: dict[str, Any], grid_price_per_kwh: float) -> str:
    """The page of a `daisee demo --flexible` summary (one run, or rigid and flexible compared)."""
    runs: list[str] = [label for label in ("rigid", "flexible") if label in summary]
    title = f"daisee: the loop's day with{'out and with' if len(runs) == 2 else ''} the flexibility signal"
    meta = (
        f"day from {_e(summary['day'])}, 24 h; weather {_e(summary['weather'] or 'of the seed')}; "
        f"{len(summary['flexible_households'])} households follow the signal (a share of "
        f"{_e(summary['flexible_share'])} of those that consume): {_e(', '.join(summary['flexible_households']))}"
    )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{meta}. Every figure is read back from the chain\'s settlement events.</p>',
        "<h2>The loop</h2>",
        _rates(summary, runs),
        f"<h2>Bills over the day (€, grid purchases at {grid_price_per_kwh:.2f} €/kWh included)</h2>",
        _bills(summary, runs),
        "<h2>Appliances the signal moved</h2>",
        _moved(summary[runs[-1]]["uses"]),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _rates(summary: dict[str, Any], runs: list[str]) -> str:
    head = "".join(f"<th>{_e(label)}</th>" for label in runs) + ("<th>ratio</th>" if len(runs) == 2 else "")
    rows = []
    for key, meaning in RATES.items():
        values = [summary[label][key] for label in runs]
        cells = "".join(f'<td class="n" data-rate="{_e(key)}">{v:.1%}</td>' for v in values)
        if len(runs) == 2:
            cells += f'<td class="n">{values[1] / values[0]:.2f} times</td>' if values[0] else '<td class="n">n/a</td>'
        rows.append(f"<tr><td>{_e(meaning)}</td>{cells}</tr>")
    return f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _bills(summary: dict[str, Any], runs: list[str]) -> str:
    head = "".join(f"<th>{_e(label)}</th>" for label in runs) + ("<th>change</th>" if len(runs) == 2 else "")
    rows = []
    for name, member in summary[runs[-1]]["members"].items():
        bills = [summary[label]["bills"][name] for label in runs]
        cells = "".join(f'<td class="n">{b:.2f}</td>' for b in bills)
        if len(runs) == 2:
            cells += f'<td class="n">{bills[1] - bills[0]:+.2f}</td>'
        follows = "follows the signal" if member["follows_signal"] else ""
        rows.append(
            f'<tr data-member="{_e(name)}"><td>{_e(name)}</td><td>{_e(member["kind"])}</td>'
            f"<td>{follows}</td>{cells}</tr>"
        )
    return (
        f"<table><thead><tr><th>household</th><th>kind</th><th></th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def moved(uses: dict[str, list[dict[str, Any]]]) -> list[str]:
    """A line for each use the signal moved from its usual start: whose, what, usually when, and when."""
    return [
        f"{name}'s {use['appliance']} ({use['energy_wh'] / 1000:.1f} kWh): usually from "
        f"{_clock(use['usual_start'])}, on the signal {', '.join(f'{_clock(a)}-{_clock(b)}' for a, b in use['runs'])}"
        for name, listed in uses.items()
        for use in listed
        if use["runs"][0][0] != use["usual_start"]
    ]


def _moved(uses: dict[str, list[dict[str, Any]]]) -> str:
    items = "".join(f"<li>{_e(line)}</li>" for line in moved(uses))
    return f"<ul>{items}</ul>" if items else "<p>None: the signal promised no sun to spare.</p>"


def _clock(iso: str) -> str:
    return iso[11:16]
