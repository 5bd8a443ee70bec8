"""The parameter tree: every field documented and bounded; bad values refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oudsim.model.parameters import (
    ALIASES,
    ParameterError,
    Parameters,
    apply_overrides,
    field_info,
    flat_fields,
    markdown_table,
)

FIELDS = flat_fields()
NUMERIC = [
    n
    for n, f in FIELDS.items()
    if (f.json_schema_extra or {}).get("range")
    and (f.json_schema_extra or {}).get("range")[0] is not None
    and "items" not in (f.json_schema_extra or {})
]


def test_every_field_has_unit_range_source_and_meaning():
    for name, info in FIELDS.items():
        extra = info.json_schema_extra or {}
        assert info.description, name
        assert "source" in extra and extra["source"], name
        assert "unit" in extra, name
        assert "range" in extra, name


def test_defaults_validate_and_aliases_resolve():
    p = Parameters()
    assert Parameters.model_validate(p.model_dump()) == p
    for alias, dotted in ALIASES.items():
        assert dotted in FIELDS, alias
        assert field_info(alias)["name"] == alias


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(NUMERIC), excess=st.floats(0.01, 1e6))
def test_out_of_range_values_are_refused_by_name_with_the_range(name, excess):
    lo, hi = FIELDS[name].json_schema_extra["range"]
    for bad in (lo - excess, hi + excess):
        if FIELDS[name].annotation is int:
            bad = int(bad) - 1 if bad < lo else int(bad) + 1
        with pytest.raises(ParameterError) as e:
            apply_overrides(Parameters(), {name: bad})
        assert name in str(e.value) and "allowed range" in str(e.value)


def test_wrong_type_refused():
    with pytest.raises(ParameterError, match="treatment.seek_rate"):
        apply_overrides(Parameters(), {"treatment.seek_rate": "fast"})


def test_shares_must_sum_to_one():
    with pytest.raises(ParameterError, match="ace_shares must sum to 1"):
        apply_overrides(Parameters(), {"demography.ace_shares": [0.5, 0.5, 0.5]})


def test_vector_items_checked():
    with pytest.raises(ParameterError, match=r"use\.ace_hr.*item 2 = -1\.0 is out of range"):
        apply_overrides(Parameters(), {"use.ace_hr": [1, 2, -1]})


def test_unknown_nested_key_suggests_closest():
    with pytest.raises(ParameterError, match="did you mean 'treatment.seek_rate'"):
        Parameters.build({"treatment": {"seek_ratee": 1}})


def test_parameter_file_round_trip_and_errors(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("[parameters.treatment]\nseek_rate = 2.0\n")
    assert Parameters.from_file(f).treatment.seek_rate == 2.0
    f.write_text("[parameters.treatment\nseek_rate = 2.0\n")
    with pytest.raises(ParameterError, match="TOML syntax error"):
        Parameters.from_file(f)
    with pytest.raises(ParameterError, match="no such parameter file"):
        Parameters.from_file(tmp_path / "missing.toml")


def test_docs_parameter_table_is_current():
    doc = Path(__file__).resolve().parents[1] / "docs" / "parameters.md"
    assert doc.read_text() == markdown_table(), "regenerate: python -m oudsim.model.parameters > docs/parameters.md"
