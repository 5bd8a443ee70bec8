"""Each annual rate reproduces its parameter within statistical tolerance when everything else is frozen.

Each test runs one process for one step on a crafted population (all hazard ratios that could apply
set to 1), counts events, and compares with the binomial expectation n * (1 - exp(-rate * dt)).
"""

from __future__ import annotations

import numpy as np

from oudsim.agents.states import Care, Stage
from oudsim.model import jit, rates
from oudsim.model.processes import demography, life_events, mental_health, overdose, treatment, use
from tests.helpers import assert_count_matches, bare_model

N = 40_000


def test_prob_matches_definition():
    assert rates.prob(0.0, 1 / 52) == 0
    assert np.isclose(rates.prob(2.0, 0.5), 1 - np.exp(-1.0))


def test_stream_is_xoshiro256starstar():
    """The compiled kernels' generator gives the reference algorithm's outputs, bit for bit."""
    state = jit.new_stream(np.random.default_rng(11))
    words = [int(x) for x in state]
    mask = (1 << 64) - 1

    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & mask

    def reference():
        out = (rotl((words[1] * 5) & mask, 7) * 9) & mask
        t = (words[1] << 17) & mask
        words[2] ^= words[0]
        words[3] ^= words[1]
        words[1] ^= words[2]
        words[0] ^= words[3]
        words[2] ^= t
        words[3] = rotl(words[3], 45)
        return (out >> 11) / 2**53

    expected = [reference() for _ in range(1000)]
    assert np.array_equal(jit.stream_uniforms(state, 1000), expected)


def test_stream_is_uniform_and_seeded():
    from scipy import stats

    a = jit.stream_uniforms(jit.new_stream(np.random.default_rng(1)), 200_000)
    assert stats.kstest(a, "uniform").pvalue > 1e-3
    assert np.array_equal(a[:100], jit.stream_uniforms(jit.new_stream(np.random.default_rng(1)), 100))
    assert not np.array_equal(a[:100], jit.stream_uniforms(jit.new_stream(np.random.default_rng(2)), 100))


def test_gaps_are_geometric_and_capped():
    s = jit.new_stream(np.random.default_rng(5))
    p = 0.03
    gaps = np.array([jit.gap(s, jit.log_skip(p)) for _ in range(50_000)])
    assert abs(gaps.mean() - (1 - p) / p) < 4 * np.sqrt((1 - p) / p**2 / gaps.size)
    # A rate switched off to ~0 gives an astronomically long gap: capped, never an overflowed index.
    assert jit.gap(s, jit.log_skip(1e-300)) >= 2**62
    assert jit.gap(s, jit.log_skip(1.0)) == 0  # p = 1: every index is a candidate


def test_list_where_lists_the_flagged_indices_in_order():
    rng = np.random.default_rng(4)
    for n, share in ((0, 0.5), (1, 1.0), (7, 0.0), (1000, 0.03), (1001, 0.97)):
        flags = (rng.random(n) < share).astype(np.uint8)
        out = np.full(n, -1, dtype=np.int64)
        k = jit.njit(lambda f, o: jit.list_where(f, o))(flags, out)
        assert k == flags.sum() and np.array_equal(out[:k], np.flatnonzero(flags))


def test_skip_bound_never_skips_an_event():
    """A kernel skips working out a hazard when its uniform is at or above skip_bound(largest hazard):
    no exponential draw made from such a uniform may fall below any hazard up to that largest one."""
    rng = np.random.default_rng(3)
    ulp = 2.0**-53  # the streams' uniforms are multiples of this (model.jit.uniform)
    for x_max in (1e-9, 1e-4, 0.0173, 0.5, 3.0, 40.0):
        bound, p = jit.skip_bound(x_max), -np.expm1(-x_max)
        at_or_above = np.ceil((bound + (1 - bound) * rng.random(2000) ** 8) / ulp) * ulp  # crowded at the bound
        assert not any(jit.below.py_func(u, x_max) for u in [np.ceil(bound / ulp) * ulp, *at_or_above] if u < 1)
        # and tight: just below the event's probability, the event happens
        assert bound <= p * (1 + 1e-8)
        just_below = np.floor(p * (1 - rng.random(2000) * 1e-6) / ulp) * ulp
        assert all(jit.below.py_func(u, x_max) for u in just_below.tolist())
    assert jit.skip_bound(800.0) == 1.0  # beyond float range: nothing is skipped


def test_life_event_rate():
    m = bare_model(N, **{"life_events.rate": 2.0, "life_events.ses_hr": [1, 1, 1], "life_events.ace_hr": [1, 1, 1]})
    m.population.last_event[:] = -(10**9)
    m.week += 1
    life_events.step(m)
    assert_count_matches(int(np.count_nonzero(m.population.last_event == m.week)), N, 2.0, m.dt_years)


NEUTRAL_MH = {
    "mental_health.ace_hr": [1, 1, 1],
    "mental_health.ses_hr": [1, 1, 1],
    "mental_health.event_hr": 1,
    "mental_health.loneliness_hr": 1,
    "mental_health.oud_hr": 1,
    "mental_health.craving_hr": 1,
    "mental_health.comorbidity_hr": 1,
    "mental_health.care_remission_hr": 1,
    "mental_health.integrated_remission_hr": 1,
    "mental_health.support_remission_hr": 1,
    "mental_health.oud_remission_hr": 1,
}


def test_mental_health_onset_and_remission_rates():
    onset, remission = [0.8, 1.6, 0.4, 1.2], [2.0, 3.0, 5.0, 2.5]
    m = bare_model(N, **NEUTRAL_MH, **{"mental_health.onset_rate": onset, "mental_health.remission_rate": remission})
    pop = m.population
    # Half the people have every disorder, half have none.
    pop.mh[:] = (np.arange(N) % 2 == 0)[None, :]
    pop.any_mh[:] = pop.mh.any(axis=0)  # kept in step with mh, as the model does (invariants)
    before = pop.mh.copy()
    mental_health.step(m)
    for d in range(4):
        had = before[d]
        assert_count_matches(int(np.count_nonzero(had & ~pop.mh[d])), int(had.sum()), remission[d], m.dt_years)
        assert_count_matches(int(np.count_nonzero(~had & pop.mh[d])), int((~had).sum()), onset[d], m.dt_years)
    assert np.array_equal(pop.any_mh, pop.mh.any(axis=0))


NEUTRAL_USE = {
    "use.age_hr": [1, 1, 1, 1, 1],
    "use.ses_hr": [1, 1, 1],
    "use.ace_hr": [1, 1, 1],
    "use.mh_hr": 1,
    "use.disorder_hr": [1, 1, 1, 1],
    "use.impulsivity_hr": 1,
    "use.peer_hr": 1,
    "use.loneliness_hr": 1,
    "use.event_hr": 1,
    "use.support_hr": 1,
    "use.dysregulation_hr": 1,
    "use.risk_appraisal_hr": 1,
    "use.craving_progression_hr": 1,
    "use.mh_remission_hr": 1,
    "use.craving_relapse_hr": 1,
    "use.mh_relapse_hr": 1,
}


def _use_step_counts(stage: Stage, **rates_):
    m = bare_model(N, **NEUTRAL_USE, **rates_)
    m.population.stage[:] = stage
    before = m.population.stage.copy()
    use.step(m)
    return m, before, m.population.stage


def test_initiation_rate():
    m, before, after = _use_step_counts(Stage.NONE, **{"use.initiation_rate": 1.5})
    assert_count_matches(int(np.count_nonzero(after == Stage.MISUSE)), N, 1.5, m.dt_years)


def test_access_multiplier_scales_initiation():
    m, _, after = _use_step_counts(Stage.NONE, **{"use.initiation_rate": 0.5, "use.access_multiplier": 3.0})
    assert_count_matches(int(np.count_nonzero(after == Stage.MISUSE)), N, 1.5, m.dt_years)


def test_misuse_cessation_and_progression_rates():
    m, _, after = _use_step_counts(Stage.MISUSE, **{"use.cessation_rate": 2.0, "use.progression_rate": 1.0})
    assert_count_matches(int(np.count_nonzero(after != Stage.MISUSE)), N, 3.0, m.dt_years)
    moved = np.count_nonzero(after != Stage.MISUSE)
    assert abs(np.count_nonzero(after == Stage.OUD) / moved - 1 / 3) < 0.05
    assert m.flows["new_oud"] == np.count_nonzero(after == Stage.OUD)


def test_natural_remission_rate():
    m, _, after = _use_step_counts(Stage.OUD, **{"use.natural_remission_rate": 0.9})
    assert_count_matches(int(np.count_nonzero(after == Stage.REMISSION)), N, 0.9, m.dt_years)


def test_relapse_rate():
    m, _, after = _use_step_counts(Stage.REMISSION, **{"use.relapse_rate": 1.2})
    assert_count_matches(int(np.count_nonzero(after == Stage.OUD)), N, 1.2, m.dt_years)


NEUTRAL_TREATMENT = {
    "treatment.stigma_dropout_hr": 1,
    "treatment.untreated_mh_dropout_hr": 1,
    "treatment.integrated_dropout_hr": 1,
    "treatment.perceived_stigma_hr": 1,
    "treatment.internal_stigma_hr": 1,
    "treatment.peer_recovery_hr": 1,
    "treatment.mh_care_referral_hr": 1,
    "treatment.ses_seek_hr": [1.0, 1.0, 1.0],
}


def test_dropout_and_completion_rates():
    m = bare_model(
        N,
        **NEUTRAL_TREATMENT,
        **{"treatment.dropout_rate": 2.0, "treatment.completion_rate": 0.5, "treatment.capacity_per_100k": 100_000},
    )
    pop = m.population
    pop.stage[:] = Stage.TREATMENT
    pop.care[:] = Care.MEDICATION
    treatment._leave_care_and_seek(m)
    left = np.count_nonzero(pop.stage != Stage.TREATMENT)
    assert_count_matches(left, N, 2.5, m.dt_years)
    assert abs(np.count_nonzero(pop.stage == Stage.OUD) / left - 0.8) < 0.05
    assert np.all(pop.care[pop.stage != Stage.TREATMENT] == Care.NONE)


def test_seeking_rate():
    m = bare_model(N, **NEUTRAL_TREATMENT, **{"treatment.seek_rate": 1.7})
    m.population.stage[:] = Stage.OUD
    treatment._leave_care_and_seek(m)  # no one is in care here: this is seeking alone
    assert_count_matches(int(np.count_nonzero(m.population.waiting)), N, 1.7, m.dt_years)


def test_overdose_rate_and_fatality():
    m = bare_model(
        N,
        **{
            "overdose.rate_oud": 3.0,
            "overdose.fatality": 0.5,
            "overdose.tie_presence": 0.0,
            "overdose.alone_stigma": 0,
        },
    )
    m.population.stage[:] = Stage.OUD
    m.week += 1
    overdose.step(m)
    assert_count_matches(m.flows["overdoses"], N, 3.0, m.dt_years)
    n_od = m.flows["overdoses"]
    assert abs(m.flows["overdose_deaths"] - 0.5 * n_od) <= 4.5 * np.sqrt(n_od * 0.25)
    assert np.count_nonzero(m.population.stage == Stage.DECEASED) == m.flows["overdose_deaths"]


def test_background_mortality_rate():
    m = bare_model(N, **{"demography.mortality_per_1000": [300.0] * 5, "demography.oud_mortality_hr": 1})
    m.week += 1
    demography.step(m)
    # Everyone who died was replaced by an entrant of entry_age; count them by age.
    newcomers = np.count_nonzero(m.population.entry_week == m.week)
    assert_count_matches(newcomers, N, 0.3, m.dt_years)
    assert m.population.n == N and m.flows["deaths"] == newcomers


def test_peer_use_multiplies_initiation_by_its_ratio_per_tie_up_to_the_cap():
    """Effect size, not only direction: initiation with k ties who use is initiation_rate * peer_HR^min(k, cap)."""
    m = bare_model(N, **{**NEUTRAL_USE, "use.initiation_rate": 0.8, "use.peer_hr": 1.5, "use.peer_cap": 2})
    pop = m.population
    ties = np.arange(N) % 4  # 0, 1, 2 and 3 ties who use (3 is beyond the cap of 2)
    pop.using_ties[:] = ties
    use.step(m)
    for k in range(4):
        group = ties == k
        started = int(np.count_nonzero(pop.stage[group] == Stage.MISUSE))
        assert_count_matches(started, int(group.sum()), 0.8 * 1.5 ** min(k, 2), m.dt_years)


def test_ties_in_recovery_multiply_seeking_by_their_ratio_per_tie():
    m = bare_model(N, **{**NEUTRAL_TREATMENT, "treatment.seek_rate": 1.0, "treatment.peer_recovery_hr": 1.6})
    pop = m.population
    pop.stage[:] = Stage.OUD
    ties = np.arange(N) % 3
    pop.recovery_ties[:] = ties
    treatment._leave_care_and_seek(m)
    for k in range(3):
        group = ties == k
        assert_count_matches(int(pop.waiting[group].sum()), int(group.sum()), 1.6**k, m.dt_years)


def test_keyed_uniforms_are_uniform_and_fixed_by_key_row_and_slot():
    from scipy import stats

    key = np.uint64(0x1234_5678_9ABC_DEF1)
    rows = np.arange(100_000)
    u = np.array([jit.keyed_uniform(key, int(r), 0) for r in rows[:20_000]])
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    v = np.array([jit.keyed_uniform(key, int(r), 1) for r in rows[:20_000]])
    assert abs(np.corrcoef(u, v)[0, 1]) < 0.03  # another slot: independent draws
    assert jit.keyed_uniform(key, 7, 0) == jit.keyed_uniform(key, 7, 0)  # fixed by (key, row, slot)
    assert jit.keyed_uniform(key, 7, 0) != jit.keyed_uniform(np.uint64(key + np.uint64(1)), 7, 0)


@jit.njit
def _lane_hits(key, rows, q):
    """How often each of the four lanes of keyed draws falls below q, and how often it is below q
    with the uniform drawn whole (jit.keyed_uniform at the refining slot fills in the low bits)."""
    hits = np.zeros(4, np.int64)
    for r in range(rows):
        bits = jit.keyed_bits(key, r, 0)
        for d in range(4):
            hits[d] += jit.lane_below(bits, d, key, r, 1 + d, q)
    return hits


def test_four_lanes_of_a_keyed_draw_are_exact_uniforms():
    """lane_below decides from 16 leading bits when it can and draws the rest when it cannot: the share
    below q is q, also for a q within one 1/65,536 step (where only the low bits decide)."""
    key = np.uint64(0xDEAD_BEEF_1234_5678)
    rows = 400_000
    for q in (0.3, 0.01, 3.5 / 65536, 1234.5 / 65536):
        hits = _lane_hits(key, rows, q)
        sd = np.sqrt(q * (1 - q) / rows)
        assert np.all(np.abs(hits / rows - q) < 5 * sd), (q, hits / rows)
    bits = jit.keyed_bits(key, 3, 0)
    for d in range(4):  # the coarse test never turns down a draw the whole uniform would take
        top = ((int(bits) >> (16 * d)) & 0xFFFF) / 65536
        assert jit.lane_at_least(bits, d, top + 1e-9) is False
        assert jit.lane_at_least(bits, d, top) is True


def test_streams_restart_each_step_from_their_key_and_the_week():
    states = np.stack([jit.new_stream(np.random.default_rng(s)) for s in (1, 2)])
    keys = states[:, 0].copy()
    jit.reseed_streams(states, keys, -5)
    first = states.copy()
    jit.stream_uniforms(states[0], 10)  # draws move the state on ...
    jit.reseed_streams(states, keys, -5)
    assert np.array_equal(states, first)  # ... and the next reseed for that week puts it back
    jit.reseed_streams(states, keys, -4)
    assert not np.array_equal(states, first) and not np.array_equal(states[0], states[1])
