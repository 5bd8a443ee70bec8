"""Scenario files: loading, inheritance, the shipped set, interventions in time, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from oudsim.model.interventions import KINDS, InterventionSchedule, parse_intervention
from oudsim.model.parameters import ParameterError, Parameters
from oudsim.scenarios import SCENARIO_DIR, Scenario, ScenarioError, list_scenarios, load_scenario

REQUIRED = {
    "baseline",
    "expand_moud",
    "integrated_care",
    "expand_mental_health",
    "reduce_isolation",
    "high_isolation",
    "cut_moud",
    "stigma_campaign",
    "naloxone",
    "combined",
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


# -- the shipped scenarios -------------------------------------------------------------------------


def test_shipped_scenarios_all_load_with_descriptions() -> None:
    found = {s.name: s for s in list_scenarios()}
    assert REQUIRED <= set(found)
    for s in found.values():
        assert isinstance(s.params, Parameters)
        assert len(s.description) > 20, s.name
        assert s.path is not None and s.path.parent == SCENARIO_DIR


def test_baseline_is_the_defaults_and_others_differ_only_by_interventions_or_overrides() -> None:
    baseline = load_scenario("baseline")
    assert baseline.params == Parameters()
    assert baseline.interventions == ()
    for name in REQUIRED - {"baseline"}:
        s = load_scenario(name)
        assert s.interventions or s.overrides, f"{name} changes nothing"


def test_each_named_intervention_kind_has_a_scenario_and_combined_packages_them_all() -> None:
    kinds = {i.kind for name in REQUIRED for i in load_scenario(name).interventions}
    assert set(KINDS) <= kinds | {"mixed"}
    combined = load_scenario("combined").interventions
    changed = {name for i in combined for name in i.changes}
    assert changed == {name for preset in KINDS.values() for name in preset}


def test_high_isolation_raises_tie_loss_and_reduce_isolation_lowers_it() -> None:
    base = Parameters()
    high = InterventionSchedule(list(load_scenario("high_isolation").interventions), base).parameters_at(50)
    low = InterventionSchedule(list(load_scenario("reduce_isolation").interventions), base).parameters_at(50)
    assert high.social.isolation_multiplier > base.social.isolation_multiplier
    assert low.social.isolation_multiplier < base.social.isolation_multiplier
    assert low.social.peer_support_rate > base.social.peer_support_rate


# -- user files and inheritance -------------------------------------------------------------------


def test_a_user_file_extends_a_shipped_scenario(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mine",
        """
name = "scarce_moud"
description = "Little treatment capacity, then doubled"
extends = "expand_moud"
[parameters]
"treatment.capacity_per_100k" = 100
[parameters.social]
isolation_multiplier = 1.5
""",
    )
    s = load_scenario(path)
    assert s.name == "scarce_moud"
    assert s.params.treatment.capacity_per_100k == 100
    assert s.params.social.isolation_multiplier == 1.5
    assert s.interventions == load_scenario("expand_moud").interventions  # inherited
    assert load_scenario(str(path)).params == s.params  # a path given as text works too


def test_child_overrides_parent_and_adds_interventions(tmp_path: Path) -> None:
    write(
        tmp_path,
        "parent",
        """
name = "parent"
description = "parent"
[parameters]
"treatment.seek_rate" = 2.0
"stigma.initial_mean" = 0.3
[[interventions]]
kind = "naloxone"
start_year = 2
""",
    )
    child = load_scenario(
        write(
            tmp_path,
            "child",
            """
name = "child"
extends = "parent"
[parameters]
stigma = 0.5   # an alias of stigma.initial_mean
[[interventions]]
kind = "stigma_campaign"
start_year = 1
""",
        )
    )
    assert child.params.treatment.seek_rate == 2.0  # inherited
    assert child.params.stigma.initial_mean == 0.5  # overridden (through the alias)
    assert [i.kind for i in child.interventions] == ["naloxone", "stigma_campaign"]
    assert child.description == "parent"  # inherited when the child has none


def test_extends_cycle_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a", 'name = "a"\nextends = "b"\n')
    write(tmp_path, "b", 'name = "b"\nextends = "a"\n')
    with pytest.raises(ScenarioError, match="cycle"):
        load_scenario(tmp_path / "a.toml")


def test_list_scenarios_of_a_user_folder(tmp_path: Path) -> None:
    write(tmp_path, "one", 'name = "one"\ndescription = "first"\nextends = "baseline"\n')
    write(tmp_path, "two", 'name = "two"\ndescription = "second"\n[parameters]\ncapacity = 50\n')
    assert [s.name for s in list_scenarios(tmp_path)] == ["one", "two"]


def test_with_overrides_revalidates_and_keeps_interventions() -> None:
    s = load_scenario("expand_moud").with_overrides({"population": 500, "treatment.seek_rate": 2.5})
    assert s.params.simulation.population == 500
    assert s.params.treatment.seek_rate == 2.5
    assert s.overrides["simulation.population"] == 500
    assert s.interventions == load_scenario("expand_moud").interventions
    with pytest.raises(ParameterError, match=r"treatment\.seek_rate.*allowed range \[0, 52\]"):
        s.with_overrides({"treatment.seek_rate": 99})


# -- interventions act from their start year ------------------------------------------------------


def test_expand_moud_doubles_capacity_from_its_start_year_with_a_linear_ramp() -> None:
    s = load_scenario("expand_moud").with_overrides({"population": 300, "burn_in_years": 0})
    (item,) = s.interventions
    start, ramp = item.start_year, item.ramp_years
    assert ramp > 0
    model = s.build_model(rng=3)
    base = s.params.treatment.capacity_per_100k
    seen: dict[float, float] = {}
    for _ in range(int((start + ramp + 0.5) * 52)):
        model.step()
        seen[model.year] = model.params.treatment.capacity_per_100k
    before = [v for y, v in seen.items() if y < start]
    ramping = [v for y, v in sorted(seen.items()) if start < y < start + ramp]
    after = [v for y, v in seen.items() if y >= start + ramp]
    assert before and set(before) == {base}
    assert after and set(after) == {2 * base}
    assert ramping == sorted(ramping) and base < ramping[0] < ramping[-1] < 2 * base


def test_mixed_package_sets_every_component() -> None:
    item = parse_intervention({"kind": "mixed", "components": ["naloxone", {"kind": "expand_moud", "amount": 3}]})
    params = InterventionSchedule([item], Parameters()).parameters_at(0)
    assert params.overdose.naloxone_coverage == KINDS["naloxone"]["overdose.naloxone_coverage"][1]
    assert params.treatment.capacity_per_100k == 3 * Parameters().treatment.capacity_per_100k


def test_custom_set_and_scale_with_nested_or_dotted_names() -> None:
    item = parse_intervention(
        {
            "kind": "custom",
            "set": {"overdose": {"naloxone_coverage": 0.9}},
            "scale": {"treatment.seek_rate": 0.5},
        }
    )
    params = InterventionSchedule([item], Parameters()).parameters_at(0)
    assert params.overdose.naloxone_coverage == 0.9
    assert params.treatment.seek_rate == 0.5 * Parameters().treatment.seek_rate


# -- errors: one clear message naming the file, the field and what is accepted --------------------


def test_unknown_scenario_name_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario("basline")
    msg = str(err.value)
    assert "did you mean 'baseline'" in msg
    assert all(name in msg for name in REQUIRED)


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "broken",
        'name = "x"\ndescription = "d"\n\n[parameters]\n"treatment.seek_rate" = \n',
    )
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(path) in str(err.value) and "line 5" in str(err.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "[parameters.treatment]\nseek_rat = 1.0\n",
            "unknown parameter 'treatment.seek_rat'; did you mean 'treatment.seek_rate'",
        ),
        ('[parameters]\n"treatmnt.seek_rate" = 1.0\n', "did you mean 'treatment.seek_rate'"),
        ('descripton = "typo"\n', "unknown key 'descripton'; did you mean 'description'"),
        (
            '[parameters]\n"overdose.naloxone_coverage" = 1.5\n',
            "overdose.naloxone_coverage = 1.5: Input should be less than or equal to 1; allowed range [0, 1]",
        ),
        ('[parameters]\n"treatment.seek_rate" = "fast"\n', "treatment.seek_rate = 'fast'"),
        ('[[interventions]]\nkind = "expand_mod"\n', "did you mean 'expand_moud'"),
        (
            '[[interventions]]\nkind = "naloxone"\nstrat_year = 1\n',
            "unknown key 'strat_year'; did you mean 'start_year'",
        ),
        ('[[interventions]]\nkind = "naloxone"\nstart_year = -1\n', "start_year = -1"),
        (
            '[[interventions]]\nkind = "naloxone"\namount = 2.0\n',
            "overdose.naloxone_coverage = 2.0",
        ),
        (
            '[[interventions]]\nkind = "custom"\nscale = { "treatment.seek_rte" = 2 }\n',
            "did you mean 'treatment.seek_rate'",
        ),
    ],
)
def test_bad_scenarios_fail_with_the_name_and_the_rule(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, "bad", f'name = "bad"\n{body}')
    with pytest.raises(ParameterError) as err:
        load_scenario(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_range_errors_state_the_allowed_range(tmp_path: Path) -> None:
    path = write(tmp_path, "bad", '[parameters]\n"treatment.seek_rate" = 100\n')
    with pytest.raises(ParameterError, match=r"treatment\.seek_rate = 100.*allowed range \[0, 52\] \(per year\)"):
        load_scenario(path)


def test_missing_file_and_bad_extends_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.toml")
    path = write(tmp_path, "orphan", 'extends = "no_such_parent"\n')
    with pytest.raises(ScenarioError, match="extends 'no_such_parent'.*unknown scenario"):
        load_scenario(path)


def test_scenario_objects_pass_through() -> None:
    s = load_scenario("naloxone")
    assert load_scenario(s) is s
    assert isinstance(s, Scenario)
