"""JSON that comes from outside the process — HTTP bodies, a relay's answers, MQTT payloads, a device's
answers — parsed within bounds.

Size and nesting are checked before `json.loads` sees the text. The nesting check matters most: py-evm
and py_ecc raise Python's recursion limit to 100000 when imported, far beyond what the C stack holds, so
a body of a few hundred kB of `[` would crash the process inside `json.loads` instead of raising
`RecursionError`. Every refusal is an `UntrustedJSONError` (a `ValueError`) with a one-line reason.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 32  # far above any shape daisee reads (a reading batch nests 3 deep)
# what py-evm (the embedded chain) needs for nested calls, and sets itself; py_ecc asks for 100000
RECURSION_LIMIT = 1024 * 12

# a complete JSON string (escapes included); what is inside cannot open or close a container
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # unrolled: one step per run of plain characters
_ONE_KIND = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))  # UTF-8 sequences of other characters hold no ASCII byte


class UntrustedJSONError(ValueError):
    """The text is too large, too deeply nested, not UTF-8 or not JSON."""


def parse_untrusted(data: bytes | str, *, max_bytes: int, parse_float: Callable[[str], Any] | None = None) -> Any:
    """The JSON value in `data`, refused if larger than `max_bytes` or nested deeper than MAX_DEPTH."""
    if len(data) > max_bytes:
        raise UntrustedJSONError(f"{len(data)} bytes, above the limit of {max_bytes}")
    try:
        text = data.decode() if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise UntrustedJSONError(f"not UTF-8 (byte {exc.start})") from None
    if nesting_depth(text, stop_above=MAX_DEPTH) > MAX_DEPTH:
        raise UntrustedJSONError(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_float=parse_float)
    except (ValueError, RecursionError) as exc:  # RecursionError: cannot happen below MAX_DEPTH; kept as a net
        raise UntrustedJSONError(f"not JSON ({' '.join(str(exc).split())})") from None


def nesting_depth(text: str, *, stop_above: int) -> int:
    """How deeply `text`'s arrays and objects nest, or `stop_above` + 1 if deeper.

    The brackets outside strings are kept (of one kind: the parser checks that they match), then every
    innermost pair is removed at once, once per level, by `bytes.replace`: a nanosecond or two a byte a
    pass. A run of more than `stop_above` opening brackets ends the count at once, so a depth bomb costs
    one pass, and a text that hides its depth between pairs shrinks at every pass."""
    brackets = _STRING.sub("", text).encode("utf-8", "replace").translate(_ONE_KIND, _NOT_BRACKET)
    deep_run = b"[" * (stop_above + 1)
    depth = 0
    while brackets and depth <= stop_above:
        if deep_run in brackets:  # what comes before the run is at depth 0 or more
            return stop_above + 1
        inner = brackets.replace(b"[]", b"")
        if len(inner) == len(brackets):  # unbalanced, so not JSON: bound what is left as a parser would meet it
            return min(depth + _scanned_depth(brackets.decode("ascii"), stop_above - depth), stop_above + 1)
        brackets, depth = inner, depth + 1
    return min(depth, stop_above + 1)


def _scanned_depth(brackets: str, stop_above: int) -> int:
    depth = deepest = 0
    for bracket in brackets:
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > stop_above or depth < 0:  # a parser stops at a bracket that closes nothing
            break
    return deepest


def bound_recursion() -> None:
    """Bring Python's recursion limit back to what the embedded chain needs, once py_ecc has raised it,
    so that a parser daisee does not control (web3's, for RPC answers) raises RecursionError instead of
    overflowing the C stack."""
    sys.setrecursionlimit(min(sys.getrecursionlimit(), RECURSION_LIMIT))
