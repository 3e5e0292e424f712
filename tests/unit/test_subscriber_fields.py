"""What an editor may type about a subscriber (``audience.fields``): every flat object of scalar
JSON values within the limits is accepted as it is, through the JSON box too; anything nested,
unnamed, over-long or not finite is refused with a reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsletter.audience import fields
from newsletter.exceptions import InvalidInput

NAMES = st.text(
    alphabet=st.characters(blacklist_categories=["Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn"]),
    min_size=1,
    max_size=fields.KEY_MAX,
).filter(lambda k: k.strip() != "" and k.isprintable())
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)


@given(st.dictionaries(NAMES, SCALARS, max_size=20))
def test_a_flat_object_of_scalars_is_accepted_as_it_is(value: dict[str, Any]) -> None:
    assert fields.check_attributes(value) == value
    assert fields.parse_attributes(json.dumps(value)) == value


@given(
    st.dictionaries(NAMES, SCALARS, max_size=5),
    NAMES,
    st.one_of(st.lists(SCALARS, max_size=3), st.dictionaries(NAMES, SCALARS, max_size=3)),
)
def test_a_nested_value_is_refused(
    value: dict[str, Any], key: str, nested: list[Any] | dict[str, Any]
) -> None:
    with pytest.raises(InvalidInput, match="a value is text, a number"):
        fields.check_attributes({**value, key: nested})


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("[1, 2]", "must be a JSON object"),
        ('{"a": 1,}', "not valid JSON"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": 1e999}', "not a finite number"),
        ('{" ": 1}', "non-empty"),
        (json.dumps({"k" * 65: 1}), "longer than 64"),
        (json.dumps({f"k{i}": i for i in range(101)}), "at most 100 names"),
        (json.dumps({"big": "x" * 20_000}), "bytes of JSON"),
    ],
)
def test_what_is_refused_says_why(typed: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        fields.parse_attributes(typed)


def test_an_empty_box_is_no_attributes_and_language_and_zone_are_checked() -> None:
    assert fields.parse_attributes("  \n") == {}
    assert fields.check_language("pt-br") == "pt-BR"
    assert fields.check_language("") is None
    assert fields.check_time_zone(" Europe/Minsk ") == "Europe/Minsk"
    assert fields.check_time_zone("") is None
    with pytest.raises(InvalidInput, match="IANA"):
        fields.check_time_zone("Europe/Atlantis")
    with pytest.raises(InvalidInput, match="one line of at most 64"):
        fields.check_tag("t" * 65)
    assert fields.check_tag("  big   donor ") == "big donor"
