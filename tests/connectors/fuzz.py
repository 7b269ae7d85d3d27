"""Hypothesis strategies for bad CRM payloads: garbage values and mutations of a valid record.

A mutation replaces or deletes the value at one path of a valid record (a key of a dict, an
item of a list, at any depth), so the fuzzed records stay close to what a CRM sends and reach
deep into the mapping instead of failing at the first check.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from hypothesis import strategies as st

Path = tuple[str | int, ...]
DELETE = object()  # a mutation that removes the key (or list item)

ODD_TEXT = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u200b",  # zero-width space
    "\u200f\u202eevil\u202c",  # RTL mark and override
    "\ufeff",
    "🔥" * 3,
    "Ж" * 7,
    "\ud800",  # a lone surrogate (not encodable as UTF-8)
    "\n\r\t",
    "<script>alert(1)</script>",
    "{{7*7}}",
    "{name}{score}",
    '=HYPERLINK("http://x","y")',
    "[hs:call_now:2026-01-01:abc]",
    "[complaint] angry",
    "[meeting no_show]",
    "null",
    "NaN",
    "-1",
    "1e400",
    "0x10",
)
ODD_DATES = (
    0,
    -1,
    -62_135_596_800,  # 0001-01-01 in Unix seconds
    253_402_300_800,  # 10000-01-01
    10**11,
    10**20,
    -(10**20),
    1.5e300,
    "0",
    "0000-01-01",
    "0001-01-01T00:00:00Z",
    "1600-01-01",
    "2300-01-01",
    "99999-01-01",
    "2024-02-30",
    "2024-13-01T00:00:00",
    "2026-01-05T25:61:00Z",
    "2026-01-05T10:00:00+25:00",
    "99999999999999999999",
    "-99999999999999",
    "253402300800000",
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(ODD_TEXT),
    st.sampled_from(ODD_DATES),
)
# up to 100,000 characters without drawing each one
huge_text = st.builds(
    lambda c, n: c * n,
    st.sampled_from(("x", "Ж", "🔥", "\u200b", " ")),
    st.integers(1_000, 100_000),
)
garbage: st.SearchStrategy[Any] = st.recursive(
    st.one_of(scalars, huge_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths(record: Any, prefix: Path = ()) -> list[Path]:
    """Every path into `record` (dict keys and list positions, at any depth), itself excluded."""
    out: list[Path] = []
    items: list[tuple[str | int, Any]] = []
    if isinstance(record, dict):
        items = list(record.items())
    elif isinstance(record, list):
        items = list(enumerate(record))
    for key, value in items:
        out.append((*prefix, key))
        out.extend(paths(value, (*prefix, key)))
    return out


def apply(record: Any, path: Path, value: Any) -> Any:
    """A copy of `record` with the value at `path` replaced (or removed, for DELETE)."""
    out = copy.deepcopy(record)
    parent = out
    for key in path[:-1]:
        if isinstance(parent, dict) and key in parent:
            parent = parent[key]
        elif isinstance(parent, list) and isinstance(key, int) and key < len(parent):
            parent = parent[key]
        else:
            return out  # an earlier mutation removed the path
    last = path[-1]
    if isinstance(parent, dict):
        if value is DELETE:
            parent.pop(last, None)
        else:
            parent[last] = value
    elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        if value is DELETE:
            del parent[last]
        else:
            parent[last] = value
    return out


@st.composite
def mutated(draw: st.DrawFn, valid: Any, extra_keys: tuple[Path, ...] = ()) -> Any:
    """`valid` with one to four of its values replaced by garbage or deleted."""
    record = copy.deepcopy(valid)
    targets = paths(valid) + list(extra_keys)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(targets))
        value = draw(st.one_of(garbage, st.just(DELETE)))
        record = apply(record, path, value)
    return record


def finite(value: Any) -> bool:
    return not (isinstance(value, float) and (math.isnan(value) or math.isinf(value)))
