"""Shelly energy meters over their local HTTP API, polled.

Gen1 EM and 3EM: `GET /status` lists `emeters`, each with cumulative `total` and `total_returned` in Wh.
Gen2 and later (Pro 3EM, ...): `GET /rpc/EMData.GetStatus?id=<channel>` gives `total_act` and
`total_act_ret` in Wh, already summed over the phases.
"""

from __future__ import annotations

import http.client
import logging
import math
import threading
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from daisee.errors import DaiseeError
from daisee.gateways import MAX_INDEX_WH, MeterSample
from daisee.untrusted_json import parse_untrusted

log = logging.getLogger(__name__)

_MAX_RESPONSE_BYTES = 1 << 20


class ShellyGateway:
    """Samples from one Shelly meter, one per successful poll every `poll_seconds`.

    `generation` is 1 for the Gen1 API, 2 for the RPC API of Gen2 and later. `sum_emeters` (Gen1 3EM) adds
    all three phases instead of reading `channel`. A failed poll (unreachable, HTTP error, bad JSON, an
    emeter flagged invalid) is counted in `failed_polls`, logged and retried at the next poll.
    """

    def __init__(
        self,
        url: str,
        generation: int = 1,
        channel: int = 0,
        poll_seconds: float = 10,
        *,
        sum_emeters: bool = False,
        timeout: float = 5.0,
    ) -> None:
        base = url.rstrip("/")
        if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
            raise DaiseeError(f"Shelly URL {url!r}: give the device's address, e.g. http://192.168.1.50")
        if generation not in (1, 2):
            raise DaiseeError(f"Shelly generation {generation}: use 1 for Gen1 (EM, 3EM), 2 for Gen2 and later")
        if sum_emeters and generation != 1:
            raise DaiseeError("sum_emeters is for Gen1 3EM: Gen2 total_act already sums the phases")
        if channel < 0:
            raise DaiseeError(f"Shelly channel {channel}: give the meter's channel, from 0")
        if poll_seconds <= 0 or timeout <= 0:
            raise DaiseeError(f"poll every {poll_seconds} s with a {timeout} s timeout: give positive seconds")
        self._endpoint = f"{base}/status" if generation == 1 else f"{base}/rpc/EMData.GetStatus?id={channel}"
        self._generation = generation
        self._channel = channel
        self._sum_emeters = sum_emeters
        self._poll_seconds = poll_seconds
        self._timeout = timeout
        self._closed = threading.Event()
        self.failed_polls = 0

    def samples(self) -> Iterator[MeterSample]:
        """Poll until `close()`, yielding each successful reading."""
        while not self._closed.is_set():
            sample = self._poll()
            if sample is not None:
                yield sample
            self._closed.wait(self._poll_seconds)

    def close(self) -> None:
        """End `samples()` from any thread: at once if waiting, else when the request in flight is done."""
        self._closed.set()

    def _poll(self) -> MeterSample | None:
        try:
            with urllib.request.urlopen(self._endpoint, timeout=self._timeout) as response:
                document = parse_untrusted(
                    response.read(_MAX_RESPONSE_BYTES + 1), max_bytes=_MAX_RESPONSE_BYTES, parse_float=Decimal
                )
            imported, exported = self._read(document)
        except (OSError, http.client.HTTPException, ValueError) as exc:  # HTTPError and URLError are OSErrors
            self.failed_polls += 1
            log.warning("%s: %s; retrying in %s s", self._endpoint, exc, self._poll_seconds)
            return None
        return MeterSample(time.time(), imported, exported)

    def _read(self, document: Any) -> tuple[int, int]:
        """(import, export) in whole Wh, rounded down; ValueError naming what is missing or wrong."""
        if self._generation == 2:
            return math.floor(_energy(document, "total_act")), math.floor(_energy(document, "total_act_ret"))
        emeters = document.get("emeters") if isinstance(document, dict) else None
        if not isinstance(emeters, list) or len(emeters) <= self._channel:
            raise ValueError(f"no emeters[{self._channel}] in the response")
        chosen = emeters if self._sum_emeters else [emeters[self._channel]]
        if not all(isinstance(emeter, dict) and emeter.get("is_valid", True) is True for emeter in chosen):
            raise ValueError("the meter flags an emeter as not valid")
        imported = sum(_energy(emeter, "total") for emeter in chosen)
        exported = sum(_energy(emeter, "total_returned") for emeter in chosen)
        return math.floor(imported), math.floor(exported)


def _energy(document: Any, key: str) -> Decimal | int:
    """`document[key]`, a cumulative energy in Wh; ValueError unless a non-negative number."""
    value = document.get(key) if isinstance(document, dict) else None
    if not isinstance(value, Decimal | int) or isinstance(value, bool) or not 0 <= value < MAX_INDEX_WH:
        raise ValueError(f"no energy in Wh at {key!r}")
    return value
