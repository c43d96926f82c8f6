"""Untrusted JSON: size, nesting and encoding are refused with a reason before json.loads runs, in this
process whose recursion limit py_ecc raised to 100000 (where json.loads of a depth bomb overflows the C
stack instead of raising RecursionError)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from eth_keys.datatypes import PrivateKey
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from daisee.oracle.senders import RETRY, RelaySender
from daisee.readings import LoopDomain, Reading
from daisee.untrusted_json import MAX_DEPTH, RECURSION_LIMIT, UntrustedJSONError, nesting_depth, parse_untrusted

BOMB = b"[" * 100_000 + b"]" * 100_000


def test_the_process_runs_with_py_ecc_s_recursion_limit() -> None:
    assert sys.getrecursionlimit() >= 100_000  # what makes the bombs below dangerous


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (BOMB, "nested deeper than 32 levels"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "nested deeper than 32 levels"),
        (b"[" * 200_000, "nested deeper than 32 levels"),  # unclosed, still refused before parsing
        (b" " * 1025, "1025 bytes, above the limit of 1024"),
        (b"\xff\xfe", "not UTF-8 (byte 0)"),
        (b'{"meter_id": ', "not JSON (Expecting value: line 1 column 14 (char 13))"),
    ],
    ids=["depth-bomb", "deep-objects", "unclosed", "oversize", "not-utf8", "truncated"],
)
def test_hostile_json_is_refused_with_its_reason(data: bytes, reason: str) -> None:
    limit = 1024 if len(data) < 1030 else 1 << 20
    with pytest.raises(UntrustedJSONError) as refused:
        parse_untrusted(data, max_bytes=limit)
    assert str(refused.value) == reason


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '{"note": "[[[[{{{{\\"]]]]", "deep": [[[1]]]}'
    assert nesting_depth(text, stop_above=MAX_DEPTH) == 4
    assert parse_untrusted(text, max_bytes=1024) == {"note": '[[[[{{{{"]]]]', "deep": [[[1]]]}


def _depth(value: object) -> int:
    """The reference: how deeply a parsed JSON value nests."""
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text('[]{}\\"ab ', max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text('[]{}\\"k', max_size=4), inner, max_size=4),
    max_leaves=60,
)


@given(_JSON)
def test_the_depth_of_any_json_is_found_exactly(value: object) -> None:
    assert nesting_depth(json.dumps(value), stop_above=MAX_DEPTH) == min(_depth(value), MAX_DEPTH + 1)


def _hidden(depth: int, passes: int) -> str:
    """`depth` levels whose opening brackets each hide behind `passes` pairs (each pass nests 2 deeper at the
    bottom): no run of opening brackets is long."""
    text = "[" * depth + "]" * depth
    for _ in range(passes):
        text = text.replace("[", '[{"k": []},')
    return text


@pytest.mark.parametrize("passes", [0, 1, 3, 6])
@pytest.mark.parametrize("depth", [1, 31, MAX_DEPTH, MAX_DEPTH + 1, 100, 10_000])
def test_deep_texts_count_exactly_up_to_the_limit_however_they_hide_it(depth: int, passes: int) -> None:
    assert nesting_depth(_hidden(depth, passes), stop_above=MAX_DEPTH) == min(depth + 2 * passes, MAX_DEPTH + 1)


def _scan(brackets: str) -> int:
    """The reference for any text of brackets: the deepest a parser reading it left to right can get."""
    depth = deepest = 0
    for bracket in brackets:
        depth += 1 if bracket in "[{" else -1
        if depth < 0:
            break
        deepest = max(deepest, depth)
    return deepest


@given(st.text("[]{}", max_size=80), st.integers(0, 8))
def test_unbalanced_brackets_never_count_shallower_than_a_parser_goes(brackets: str, stop_above: int) -> None:
    assert nesting_depth(brackets, stop_above=stop_above) >= min(_scan(brackets), stop_above + 1)


def test_json_up_to_the_depth_limit_parses_with_its_floats_as_asked() -> None:
    text = "[" * MAX_DEPTH + "1.5" + "]" * MAX_DEPTH
    value = parse_untrusted(text, max_bytes=1024, parse_float=Decimal)
    for _ in range(MAX_DEPTH):
        [value] = value
    assert value == Decimal("1.5")


def test_bounding_the_recursion_keeps_what_the_embedded_chain_needs() -> None:
    from daisee.untrusted_json import bound_recursion

    before = sys.getrecursionlimit()
    try:
        bound_recursion()
        assert sys.getrecursionlimit() == RECURSION_LIMIT == 12_288
    finally:
        sys.setrecursionlimit(before)


class HostileRelay(ThreadingHTTPServer):
    """Answers every GET with the same hostile body (the oracle asks a reading's fate first)."""

    def __init__(self, body: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _Answer)
        self.body = body


class _Answer(BaseHTTPRequestHandler):
    server: HostileRelay

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture(params=[BOMB, b"[1, 2]", b" " * (65 << 10) + b"{}", b"\xff"], ids=["bomb", "list", "oversize", "bytes"])
def hostile_relay(request: pytest.FixtureRequest) -> Iterator[HostileRelay]:
    server = HostileRelay(request.param)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_an_oracle_facing_a_hostile_relay_retries_later_and_stays_up(hostile_relay: HostileRelay) -> None:
    domain = LoopDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
    signed = Reading(keccak(text="meter"), 3, 1_000, 0).sign(PrivateKey(keccak(text="gateway")), domain)
    url = f"http://127.0.0.1:{hostile_relay.server_address[1]}"

    [outcome] = RelaySender(url, timeout=5).send([signed]).values()

    assert outcome.status == RETRY
    assert str(outcome.reason).startswith("relay answer refused: ")
