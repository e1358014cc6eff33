"""``bounds.json_problem``: its unnamed first check agrees with the named walk on every
value (a property), and a sweep-sized report passes it."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from ktrdr.bounds import INT64_MAX, JSON_DEPTH_MAX, _named_problem, json_problem

# Each kind of problem often enough that every rule of the quick check is exercised (a
# plain floats() strategy yields a non-finite scalar in under 1 % of the examples).
_bad = st.sampled_from([math.inf, -math.inf, math.nan, INT64_MAX + 1, -INT64_MAX - 1, "a\x00"])
_scalars = (
    st.none() | st.booleans() | st.floats() | _bad
    | st.integers(min_value=-INT64_MAX, max_value=INT64_MAX)
    | st.text(alphabet=st.sampled_from("abé"), max_size=4)
)  # fmt: skip
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(
            st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([math.nan]), max_size=4
        )
        | st.dictionaries(st.text(alphabet=st.sampled_from("k\x00"), max_size=2), inner, max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(_values, st.integers(min_value=0, max_value=JSON_DEPTH_MAX + 1))
def test_the_quick_check_finds_a_problem_exactly_when_the_named_walk_does(
    value: object, depth: int
) -> None:
    assert json_problem(value, depth=depth) == _named_problem(value, "", depth)


def test_deep_lists_of_floats_are_refused_with_the_place() -> None:
    value: object = [1.0]
    for _ in range(JSON_DEPTH_MAX):
        value = [value]
    assert json_problem(value) == f"{'.'.join(['0'] * (JSON_DEPTH_MAX + 1))}: nested deeper " \
        f"than {JSON_DEPTH_MAX} levels"  # fmt: skip
    assert json_problem({"r": [{"b": [0.5, math.inf]}]}) == (
        "r.0.b.1: numbers must be finite (no Infinity or NaN)"
    )
