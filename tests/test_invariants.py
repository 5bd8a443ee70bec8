"""model.invariants: the state's invariants hold after every process of long runs, each invariant
catches the corruption it is about (naming the process and itself), and checking changes nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oudsim.agents.population import FIELD_NAMES
from oudsim.agents.states import Care, Stage
from oudsim.model import OUDModel, invariants
from oudsim.model.invariants import CHECKS, PROCESSES, InvariantError, check
from oudsim.model.parameters import apply_overrides
from oudsim.model.processes.treatment import slots
from oudsim.scenarios import load_scenario


@pytest.fixture
def counted(monkeypatch):
    """Counts the checks the model runs, by the process they follow."""
    calls = dict.fromkeys(PROCESSES, 0)
    real = invariants.check

    def counting(m, after):
        calls[after] += 1
        real(m, after)

    monkeypatch.setattr(invariants, "check", counting)
    return calls


# -- long runs pass -------------------------------------------------------------------------


def test_combined_scenario_holds_every_invariant_after_every_process(counted):
    """2,000 people, 2 years of burn-in and 10 years of the combined package (capacity ramped up and
    shifted toward integrated care, mental-health care expanded, ties, stigma, naloxone)."""
    m = load_scenario("combined").build_model(population=2_000, rng=3, check_invariants=True, burn_in_years=2)
    burn_in = counted["life_events"]
    assert burn_in == 104  # every burn-in step was checked (weekly steps)
    m.run_for(520)
    assert counted == dict.fromkeys(PROCESSES, burn_in + 520)
    assert m.population.stage.size == 2_000 and m.flows is not None


def test_capacity_cuts_and_heavy_mortality_hold_every_invariant():
    """OUD capacity cut and shifted to integrated care mid-run (the newest go back to the queue),
    mental-health capacity cut (people stay in care above the new slots until they leave), and many
    deaths every step (deceased rows, then replacement)."""
    m = OUDModel(population=3_000, rng=2, burn_in_years=1, capacity=2_000, check_invariants=True)
    m.run_for(5)
    cut = {
        "treatment.capacity_per_100k": 100.0,
        "treatment.mh_capacity_per_100k": 500.0,
        "treatment.integrated_share": 0.9,
    }
    before = np.count_nonzero(m.population.in_mh_care)
    m.params = apply_overrides(m.params, cut)
    m.run_for(30)
    _, _, cap_mh = slots(m)
    assert before > cap_mh  # the cut left more people in mental-health care than slots: allowed
    heavy = {"demography.mortality_per_1000": [200.0] * 5, "overdose.rate_oud": 5.0}
    m = OUDModel(population=2_000, rng=5, burn_in_years=0.5, check_invariants=True, **heavy)
    m.run_for(40)
    assert np.count_nonzero(m.population.entry_week > 0) > 100  # many died and were replaced


# -- checking changes nothing ------------------------------------------------------------------


def test_checking_gives_bit_identical_runs():
    runs = [OUDModel(population=1_500, rng=11, burn_in_years=1, check_invariants=flag) for flag in (False, True)]
    for m in runs:
        m.run_for(52)
    a, b = (m.datacollector.get_model_vars_dataframe() for m in runs)
    assert len(a) == 53
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    for name in FIELD_NAMES:
        assert np.array_equal(getattr(runs[0].population, name), getattr(runs[1].population, name)), name
    assert np.array_equal(runs[0].network.active, runs[1].network.active)


# -- each invariant can fail ---------------------------------------------------------------------


def _model() -> OUDModel:
    return OUDModel(population=800, rng=4, burn_in_years=1)


def _rows(mask: np.ndarray, k: int = 1) -> np.ndarray:
    rows = np.flatnonzero(mask)
    assert rows.size >= k
    return rows[:k]


def _wrong_length(m):
    m.population.craving = np.zeros(m.population.n + 1, dtype=np.float32)


def _stage_nine(m):
    m.population.stage[5] = 9


def _deceased_not_recorded(m):
    m.population.stage[7] = Stage.DECEASED


def _care_without_treatment(m):
    pop = m.population
    i = _rows(pop.stage == Stage.NONE.value)
    pop.care[i] = Care.MEDICATION


def _waiting_without_oud(m):
    pop = m.population
    pop.waiting[_rows(pop.stage == Stage.NONE.value)] = True


def _more_in_care_than_slots(m):
    pop = m.population
    cap_med, _, _ = slots(m)
    free = cap_med - np.count_nonzero(pop.care == Care.MEDICATION.value)
    rows = _rows(pop.stage == Stage.NONE.value, free + 1)
    pop.stage[rows] = Stage.TREATMENT  # in treatment too, so only the capacity is wrong
    pop.care[rows] = Care.MEDICATION


def _nan_loneliness(m):
    m.population.loneliness[3] = np.nan


def _stigma_above_one(m):
    m.population.stigma[11] = 1.25


def _more_using_ties_than_ties(m):
    pop = m.population
    i = _rows(pop.degree > 0)
    pop.using_ties[i] = pop.degree[i] + 1


def _any_mh_out_of_step(m):
    m.population.any_mh[0] = not m.population.mh[:, 0].any()


def _age_band_out_of_step(m):
    pop = m.population
    i = _rows(pop.age_band == 0)
    pop.age_band[i] = 2


def _tie_count_out_of_step(m):
    net = m.network
    net.n_active[0] += 1
    m.population.degree[0] += 1  # the summary follows, so only the store itself is wrong


CORRUPTIONS = {
    "population_size": _wrong_length,
    "stage_codes": _stage_nine,
    "deceased_until_replaced": _deceased_not_recorded,
    "care_matches_stage": _care_without_treatment,
    "waiting_only_untreated": _waiting_without_oud,
    "care_within_capacity": _more_in_care_than_slots,
    "floats_finite": _nan_loneliness,
    "scores_in_unit_interval": _stigma_above_one,
    "tie_summaries": _more_using_ties_than_ties,
    "any_mh_matches_mh": _any_mh_out_of_step,
    "age_and_band": _age_band_out_of_step,
    "tie_store": _tie_count_out_of_step,
}


def test_every_invariant_has_a_corruption_case():
    assert list(CORRUPTIONS) == [c.__name__ for c in CHECKS]


def test_a_fresh_model_holds_every_invariant_after_any_process():
    m = _model()
    for after in PROCESSES:
        check(m, after)


@pytest.mark.parametrize("invariant", list(CORRUPTIONS))
def test_each_invariant_catches_its_corruption(invariant):
    m = _model()
    CORRUPTIONS[invariant](m)
    with pytest.raises(InvariantError, match=rf"^after treatment: invariant {invariant} broken: .*\d"):
        check(m, after="treatment")


def test_capacity_is_checked_only_once_treatment_has_run():
    """Slots cut at the start of a step are acted on by the treatment process: before it, more people
    in care than slots is allowed."""
    m = _model()
    _more_in_care_than_slots(m)
    for after in PROCESSES[: PROCESSES.index("treatment")]:
        check(m, after)
    for after in PROCESSES[PROCESSES.index("treatment") :]:
        with pytest.raises(InvariantError, match=f"after {after}: invariant care_within_capacity"):
            check(m, after)


def test_deceased_only_while_recorded_and_never_after_replacement():
    m = _model()
    pop = m.population
    row = int(_rows((pop.stage == Stage.NONE.value) & ~pop.in_mh_care)[0])  # out of every kind of care
    pop.stage[row] = Stage.DECEASED  # as mark_deceased does, with the row recorded
    m.dead_rows[0] = row
    m.died[0] = 1
    check(m, after="overdose")
    with pytest.raises(InvariantError, match="after demography: invariant deceased_until_replaced"):
        check(m, after="demography")
    m.died[0] = 0  # recorded no more: not allowed after overdose either
    with pytest.raises(InvariantError, match="after overdose: invariant deceased_until_replaced.*rows \\[" + str(row)):
        check(m, after="overdose")


def test_unknown_process_name_is_refused():
    with pytest.raises(ValueError, match="expected one of the processes life_events"):
        check(_model(), after="lunch")


def test_a_failure_during_a_run_names_the_process():
    """A corruption the model carries into a step is reported after the first process that sees it."""
    m = OUDModel(population=800, rng=4, burn_in_years=0.5, check_invariants=True)
    m.population.internal_stigma[9] = -0.5  # stigma does not run before social: caught after life_events
    with pytest.raises(InvariantError, match=r"after life_events: invariant scores_in_unit_interval .*rows \[9\]"):
        m.step()
