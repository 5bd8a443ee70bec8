"""Each mechanism's ratio does what it says: at value h the exposed group's event rate is h times the
unexposed group's; at the neutral value 1 the two groups are statistically indistinguishable.

Each case crafts a population where half the people are exposed (a disorder, ties who use, stigma,
isolation ...), runs one process for one step with every other ratio at 1, and compares groups.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from oudsim.agents.states import Care, Stage
from oudsim.model.processes import mental_health, overdose, social, treatment, use
from tests.helpers import bare_model, two_proportion_z
from tests.test_rates import NEUTRAL_MH, NEUTRAL_TREATMENT, NEUTRAL_USE

N = 60_000
HALF = np.arange(N) % 2 == 0


@dataclass
class Case:
    name: str
    param: str  # the ratio under test
    value: float  # its non-neutral value
    base: dict  # rates and neutral ratios
    setup: Callable  # (model, exposed mask) -> None
    run: Callable  # (model) -> per-person bool: event happened


def _set_stage(stage):
    def setup(m, exposed):
        m.population.stage[:] = stage

    return setup


def _initiation_event(m):
    before = m.population.stage.copy()
    use.step(m)
    return (before == Stage.NONE) & (m.population.stage == Stage.MISUSE)


def _progression_event(m):
    use.step(m)
    return m.population.stage == Stage.OUD


def _relapse_event(m):
    use.step(m)
    return m.population.stage == Stage.OUD


def _seek_event(m):
    treatment._leave_care_and_seek(m)  # no one is in care here: this is seeking alone
    return m.population.waiting


def _mh_onset_event(m):
    mental_health.step(m)
    return m.population.mh[0]


def _disorder(m, exposed):
    # Anxiety marks exposure; onset is measured on depression. No one keeps another disorder, or the
    # unexposed would include people with one (the ratio then reads ~2.5 for 3).
    m.population.mh[2:] = False
    m.population.mh[1] = exposed
    m.population.any_mh[:] = m.population.mh.any(axis=0)


def _craving(m, exposed):
    m.population.craving[:] = exposed.astype(np.float32)


def _lonely(m, exposed):
    m.population.loneliness[:] = exposed.astype(np.float32)


def _stigma_perceived(m, exposed):
    m.population.stage[:] = Stage.OUD
    m.population.perceived_stigma[:] = exposed.astype(np.float32)


def _stigma_internal(m, exposed):
    m.population.stage[:] = Stage.OUD
    m.population.internal_stigma[:] = exposed.astype(np.float32)


def _in_mh_care(m, exposed):
    m.population.stage[:] = Stage.OUD
    m.population.in_mh_care[:] = exposed


def _peers(m, exposed):
    m.population.using_ties[:] = exposed * 1.0  # one tie who uses


INIT = {**NEUTRAL_USE, "use.initiation_rate": 1.0}
CASES = [
    Case(
        "self-medication: disorder raises initiation (E9)",
        "use.mh_hr",
        2.5,
        INIT,
        lambda m, e: (_set_stage(Stage.NONE)(m, e), _disorder(m, e)),
        _initiation_event,
    ),
    Case("peers who use raise initiation", "use.peer_hr", 2.0, INIT, _peers, _initiation_event),
    Case("loneliness raises initiation (E12)", "use.loneliness_hr", 2.0, INIT, _lonely, _initiation_event),
    Case(
        "craving raises progression",
        "use.craving_progression_hr",
        3.0,
        {**NEUTRAL_USE, "use.progression_rate": 1.0, "use.cessation_rate": 0.0},
        lambda m, e: (_set_stage(Stage.MISUSE)(m, e), _craving(m, e)),
        _progression_event,
    ),
    Case(
        "craving raises relapse",
        "use.craving_relapse_hr",
        4.0,
        {**NEUTRAL_USE, "use.relapse_rate": 1.0},
        lambda m, e: (_set_stage(Stage.REMISSION)(m, e), _craving(m, e)),
        _relapse_event,
    ),
    Case(
        "disorder raises relapse",
        "use.mh_relapse_hr",
        2.0,
        {**NEUTRAL_USE, "use.relapse_rate": 1.0},
        lambda m, e: (_set_stage(Stage.REMISSION)(m, e), _disorder(m, e)),
        _relapse_event,
    ),
    Case(
        "perceived stigma cuts seeking",
        "treatment.perceived_stigma_hr",
        0.4,
        {**NEUTRAL_TREATMENT, "treatment.seek_rate": 3.0},
        _stigma_perceived,
        _seek_event,
    ),
    Case(
        "internalised stigma cuts seeking",
        "treatment.internal_stigma_hr",
        0.4,
        {**NEUTRAL_TREATMENT, "treatment.seek_rate": 3.0},
        _stigma_internal,
        _seek_event,
    ),
    Case(
        "referral from mental-health care raises seeking",
        "treatment.mh_care_referral_hr",
        2.0,
        {**NEUTRAL_TREATMENT, "treatment.seek_rate": 1.5},
        _in_mh_care,
        _seek_event,
    ),
    Case(
        "loneliness raises mental-health onset",
        "mental_health.loneliness_hr",
        2.5,
        {**NEUTRAL_MH, "mental_health.onset_rate": [1.0, 0.0, 0.0, 0.0]},
        _lonely,
        _mh_onset_event,
    ),
    Case(
        "craving worsens mental health (feedback loop)",
        "mental_health.craving_hr",
        2.0,
        {**NEUTRAL_MH, "mental_health.onset_rate": [1.0, 0.0, 0.0, 0.0]},
        _craving,
        _mh_onset_event,
    ),
    Case(
        "a disorder raises onset of another (co-occurrence)",
        "mental_health.comorbidity_hr",
        3.0,
        {**NEUTRAL_MH, "mental_health.onset_rate": [1.0, 0.0, 0.0, 0.0], "mental_health.remission_rate": [0, 0, 0, 0]},
        _disorder,
        _mh_onset_event,
    ),
]


def _rates(case: Case, value: float, seed: int) -> tuple[int, int, int, int]:
    m = bare_model(N, rng=seed, **{**case.base, case.param: value})
    exposed = HALF.copy()
    case.setup(m, exposed)
    m.population.mh[0] = False  # depression is the onset outcome where measured
    m.population.any_mh[:] = m.population.mh.any(axis=0)
    hit = case.run(m)
    return int(hit[exposed].sum()), int(exposed.sum()), int(hit[~exposed].sum()), int((~exposed).sum())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.param)
def test_ratio_reproduces_its_value(case: Case):
    k1, n1, k0, n0 = _rates(case, case.value, seed=1)
    dt = 1 / 52
    # Per-step probabilities to hazards, then the ratio: should equal the parameter.
    h1, h0 = -math.log(1 - k1 / n1) / dt, -math.log(1 - k0 / n0) / dt
    se = math.sqrt(1 / max(k1, 1) + 1 / max(k0, 1))  # on the log scale
    assert abs(math.log(h1 / h0) - math.log(case.value)) < 4 * se, f"{case.name}: ratio {h1 / h0:.2f} vs {case.value}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.param)
def test_neutral_ratio_has_no_effect(case: Case):
    k1, n1, k0, n0 = _rates(case, 1.0, seed=2)
    assert abs(two_proportion_z(k1, n1, k0, n0)) < 4, case.name


# -- mechanisms that act through more than one step or on ties ---------------------------------


def _tie_loss(withdrawal_hr: float, seed: int) -> tuple[float, float]:
    """Share of ties lost among people with a disorder vs without, over one step."""
    m = bare_model(
        20_000,
        rng=seed,
        **{
            "social.tie_loss_rate": 2.0,
            "social.withdrawal_hr_mh": withdrawal_hr,
            "social.withdrawal_hr_oud": 1.0,
            "social.reconnect_rate": 0.0,
            "social.new_tie_rate": 0.0,
        },
    )
    pop = m.population
    pop.mh[:] = False
    pop.mh[0] = np.arange(pop.n) < pop.n // 2
    pop.any_mh[:] = pop.mh[0]
    social.refresh(m)
    before = pop.degree.copy()
    social.step(m)
    lost = before - pop.degree
    # Ties between two people with a disorder vs two without: the rate is the mean of both ends' ratios.
    return lost[: pop.n // 2].sum() / before[: pop.n // 2].sum(), lost[pop.n // 2 :].sum() / before[pop.n // 2 :].sum()


def test_withdrawal_isolates_people_with_a_disorder():
    sick, well = _tie_loss(4.0, seed=3)
    assert sick > 2.0 * well
    sick, well = _tie_loss(1.0, seed=4)
    assert abs(sick - well) < 0.15 * well


def _overdose_deaths(kits: bool, alone: float, seed: int) -> tuple[int, int]:
    m = bare_model(
        N,
        rng=seed,
        **{
            "overdose.rate_oud": 10.0,
            "overdose.fatality": 0.5,
            "overdose.tie_presence": 1.0 - alone,
            "overdose.alone_stigma": 0.0,
            "overdose.naloxone_efficacy": 1.0,
            "overdose.witnessed_fatality_factor": 1.0,
        },
    )
    m.population.stage[:] = Stage.OUD
    m.population.naloxone[:] = kits  # everyone carries a kit, or no one
    m.week += 1
    overdose.step(m)
    return m.flows["overdose_deaths"], m.flows["overdoses"]


def test_naloxone_only_helps_when_someone_is_there():
    d0, n0 = _overdose_deaths(False, alone=1.0, seed=5)
    d1, n1 = _overdose_deaths(True, alone=1.0, seed=6)
    assert abs(two_proportion_z(d0, n0, d1, n1)) < 4  # everyone alone: naloxone changes nothing
    d0, n0 = _overdose_deaths(False, alone=0.0, seed=7)
    d1, n1 = _overdose_deaths(True, alone=0.0, seed=8)
    # Always witnessed, reversed whenever a kit is at hand: only those whose kits (and their witness's)
    # went to reverse others' overdoses earlier in the step can die.
    assert d1 < 0.05 * n1 and d0 > 0.4 * n0


def test_fewer_ties_and_stigma_mean_using_alone():
    """P(alone) = 1 - (1 - alone_stigma * S_int) * (1 - (1 - tie_presence)^ties): counted by number of
    ties, with and without internalised stigma."""
    m = bare_model(N, rng=9, **{"overdose.rate_oud": 10.0, "overdose.tie_presence": 0.2, "overdose.alone_stigma": 0.5})
    pop, net = m.population, m.network
    pop.stage[:] = Stage.OUD
    pop.internal_stigma[:] = HALF.astype(np.float32)  # half hide their use with probability 0.5
    m.week += 1
    ties = net.n_active.copy()
    overdose.step(m)
    overdosed = pop.last_overdose == m.week
    n_alone, n_od = m.flows["alone_overdoses"], m.flows["overdoses"]
    expected = np.mean(
        [
            overdose.alone_probability(0.2, int(k), 0.5, float(s))
            for k, s in zip(ties[overdosed], pop.internal_stigma[overdosed], strict=True)
        ]
    )
    assert abs(n_alone / n_od - expected) < 4 * np.sqrt(expected * (1 - expected) / n_od)
    assert overdose.alone_probability(0.2, 2, 0.0, 0.0) > overdose.alone_probability(0.2, 8, 0.0, 0.0)  # fewer ties
    assert overdose.alone_probability(0.2, 0, 0.0, 0.0) == 1.0  # no ties: always alone
    assert overdose.alone_probability(0.2, 8, 0.5, 1.0) > overdose.alone_probability(0.2, 8, 0.5, 0.0)  # hiding


def test_medication_cuts_overdose_and_lost_tolerance_raises_it():
    m = bare_model(
        N, rng=10, **{"overdose.rate_oud": 5.0, "overdose.treatment_hr": 0.4, "overdose.lost_tolerance_hr": 4.0}
    )
    pop = m.population
    third = np.arange(N) % 3
    pop.stage[:] = np.where(third == 0, Stage.TREATMENT, Stage.OUD)
    pop.care[third == 0] = Care.MEDICATION
    m.week += 1
    pop.lost_tolerance_until[third == 2] = m.week + 4
    before = pop.last_overdose.copy()
    overdose.step(m)
    od = pop.last_overdose != before
    r = [od[third == g].mean() for g in range(3)]
    assert r[0] < 0.6 * r[1] and r[2] > 2.5 * r[1]


def test_a_disorder_raises_initiation_by_e9_ratio_in_all_with_its_impulsivity():
    """use.mh_hr is the total effect (E9): with the impulsivity a disorder brings (trait_increment at
    full distress) acting too, initiation with a disorder is still mh_hr times that without."""
    over = {**INIT, "use.mh_hr": 2.5, "use.impulsivity_hr": 3.0, "mental_health.trait_increment": 0.5}
    m = bare_model(N, rng=12, **over)
    pop = m.population
    exposed = np.arange(N) % 2 == 0
    pop.stage[:] = Stage.NONE
    _disorder(m, exposed)
    pop.distress[:] = exposed.astype(np.float32)  # the disorder's full effect on the traits
    pop.trait_base[0] = 0.0
    use.step(m)
    started = pop.stage == Stage.MISUSE.value
    k1, n1, k0, n0 = (
        int(started[exposed].sum()),
        int(exposed.sum()),
        int(started[~exposed].sum()),
        int((~exposed).sum()),
    )
    dt = 1 / 52
    h1, h0 = -math.log(1 - k1 / n1) / dt, -math.log(1 - k0 / n0) / dt
    se = math.sqrt(1 / k1 + 1 / k0)
    assert abs(math.log(h1 / h0) - math.log(2.5)) < 4 * se, h1 / h0


def test_initiation_follows_the_largest_ratio_among_active_disorders():
    """Disorder-specific association (E8): PTSD alone multiplies initiation by mh_hr * disorder_hr[PTSD];
    depression and PTSD together by the larger of the two, not their product."""
    over = {**INIT, "use.mh_hr": 2.0, "use.disorder_hr": [1.0, 1.0, 2.0, 1.0]}
    m = bare_model(N, rng=13, **over)
    pop = m.population
    kind = np.arange(N) % 3  # 0: none, 1: PTSD, 2: depression and PTSD
    pop.stage[:] = Stage.NONE
    pop.mh[:] = False
    pop.mh[2] = kind >= 1
    pop.mh[0] = kind == 2
    pop.any_mh[:] = pop.mh.any(axis=0)
    use.step(m)
    started = pop.stage == Stage.MISUSE.value
    dt = 1 / 52
    h = [-math.log(1 - started[kind == g].mean()) / dt for g in range(3)]
    k = [int(started[kind == g].sum()) for g in range(3)]
    for g in (1, 2):
        se = math.sqrt(1 / k[g] + 1 / k[0])
        assert abs(math.log(h[g] / h[0]) - math.log(4.0)) < 4 * se, (g, h[g] / h[0])
