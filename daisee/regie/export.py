"""Curves in open formats, one row a point and quantity, in the columns of Enedis' files: `horodate` (ISO
8601 with its offset, the start of the step), `pas` (ISO 8601 duration), `grandeur` (CONS, AUTOCONS,
COMPLEMENT, PROD, AUTOPROD, SURPLUS), `valeur`, `unite` (Wh), and `nb_points` (the meters an aggregate
sums) for the loop's. CSV, or JSON whose JSON-LD context maps the columns to SAREF (a row is a measurement:
its timestamp, value, unit and property) and the six quantities to kinds of SAREF4ENER's Energy, so that
the data can be used as a commons by other tools.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

COLUMNS = ("horodate", "pas", "grandeur", "valeur", "unite", "nb_points")
UNIT = "Wh"
CONTEXT_PATH = "/export/context.jsonld"

VOCABULARY_PATH = "/export/vocabulary.jsonld"
_DAISEE = "urn:daisee:"  # the six quantities and the count of meters, described at VOCABULARY_PATH
_MEANINGS = {
    "CONS": "energy a meter consumed in the step",
    "AUTOCONS": "of CONS, the energy allocated to it from the loop's production",
    "COMPLEMENT": "of CONS, the energy bought from the grid (CONS - AUTOCONS)",
    "PROD": "energy a meter produced in the step",
    "AUTOPROD": "of PROD, the energy sold in the loop",
    "SURPLUS": "of PROD, the energy exported to the grid (PROD - AUTOPROD)",
}

CONTEXT: dict[str, Any] = {
    "@context": {
        "saref": "https://saref.etsi.org/core/",
        "s4ener": "https://saref.etsi.org/saref4ener/",
        "time": "http://www.w3.org/2006/time#",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
        "om": "http://www.ontology-of-units-of-measure.org/resource/om-2/",
        "daisee": _DAISEE,
        "mesures": {"@id": "saref:hasMeasurement", "@container": "@list"},
        "horodate": {"@id": "saref:hasTimestamp", "@type": "xsd:dateTime"},
        "pas": {"@id": "time:hasXSDDuration", "@type": "xsd:duration"},
        "grandeur": {"@id": "saref:relatesToProperty", "@type": "@vocab"},
        "valeur": {"@id": "saref:hasValue", "@type": "xsd:integer"},
        "unite": {"@id": "saref:isMeasuredIn", "@type": "@vocab"},
        "nb_points": {"@id": "daisee:nb_points", "@type": "xsd:integer"},
        "Wh": "om:wattHour",
        **{grandeur: f"daisee:{grandeur}" for grandeur in _MEANINGS},
    }
}

VOCABULARY: dict[str, Any] = {
    "@context": {
        "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
        "s4ener": "https://saref.etsi.org/saref4ener/",
        "daisee": _DAISEE,
    },
    "@graph": [
        *(
            {"@id": f"daisee:{grandeur}", "rdfs:subClassOf": {"@id": "s4ener:Energy"}, "rdfs:comment": meaning}
            for grandeur, meaning in _MEANINGS.items()
        ),
        {"@id": "daisee:nb_points", "rdfs:comment": "how many meters an aggregate sums"},
    ],
}
GRANDEURS = tuple(_MEANINGS)


def rows(curve: Mapping[str, Any]) -> Iterator[dict[str, object]]:
    """The rows of a curve as `views.curve_json` gives it (in columns); points with nothing settled are left
    out."""
    counts = curve.get("nb_points") or [None] * len(curve["horodate"])
    shown = [grandeur for grandeur in GRANDEURS if grandeur in curve]  # a consent may show fewer
    for index, horodate in enumerate(curve["horodate"]):
        for grandeur in shown:
            value = curve[grandeur][index]
            if value is None:
                continue
            yield {
                "horodate": horodate,
                "pas": curve["pas"],
                "grandeur": grandeur,
                "valeur": value,
                "unite": UNIT,
                "nb_points": counts[index],
            }


def as_csv(curve: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows(curve))
    return out.getvalue()


def as_json(curve: Mapping[str, Any], context_url: str) -> str:
    """JSON-LD: the rows under `mesures`, with the context at `context_url`."""
    return json.dumps({"@context": context_url, "mesures": list(rows(curve))}, ensure_ascii=False, indent=1)


BILL_COLUMNS = (
    "account", "month", "CONS", "AUTOCONS", "COMPLEMENT", "PROD", "AUTOPROD", "SURPLUS",
    "local_cost", "local_revenue", "became_debt", "became_receivable", "grid_cost", "saved",
)  # fmt: skip


def bills_csv(members: list[dict[str, Any]]) -> str:
    """Each member's monthly bills, a row a member and month (amounts in ledger units), for billing."""
    out = io.StringIO()
    writer = csv.DictWriter(out, BILL_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({"account": m["account"], **bill} for m in members for bill in m["bills"])
    return out.getvalue()


ACCESS_COLUMNS = (
    "seq", "at", "reader", "basis", "consent_id", "what", "data_from", "data_until", "granularity", "hash",
)  # fmt: skip


def access_log_csv(entries: list[dict[str, Any]]) -> str:
    """A member's access log, a row an access, with each entry's running hash."""
    out = io.StringIO()
    writer = csv.DictWriter(out, ACCESS_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in entry.items()} for entry in entries)
    return out.getvalue()
