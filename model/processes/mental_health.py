"""2. Mental health: onset and remission of depression, anxiety, PTSD and other mental illness, and the
traits they move.

Onset rate of disorder d for person i:
    onset_d * onset_multiplier * ACE_HR[ace] * SES_HR[ses] * event_HR^(recent event)
            * loneliness_HR^loneliness * oud_HR^(active use) * craving_HR^craving
            * comorbidity_HR^(another disorder active)
Remission rate:
    remission_d * care_HR^(in MH care) * integrated_HR^(integrated care) * support_HR^(family support)
                * oud_remission_HR^(active use)
Both are decided from the state at the start of the step. Traits (impulsivity, impaired risk
appraisal, emotional dysregulation) are ``min(trait_base + trait_increment * distress, 1)``, where
distress relaxes toward 1 while any disorder is active and toward 0 otherwise, at ``trait_rate``.
"""

from __future__ import annotations

import math

import numpy as np

from oudsim.agents.states import Care, is_using
from oudsim.model import rates
from oudsim.model.binding import bind
from oudsim.model.jit import gap, list_where, log_skip, njit, prob, uniform
from oudsim.model.rates import log_hr, log_values, per_parameters, upper_bound

STREAMS = ("mental_health",)
FLOWS = ()


@njit(inline=True)
def onset_log_hazard_person(
    group, l_event, event, l_lonely, loneliness, l_oud, using, l_craving, craving, l_comorbidity, other_disorder
):  # fmt: skip
    """The person's part of every disorder's onset log hazard: log(ACE_HR[ace] * SES_HR[ses])
    + log(event_HR) * recent event + log(loneliness_HR) * loneliness + log(oud_HR) * active use
    + log(craving_HR) * craving + log(comorbidity_HR) * another disorder active. The onset hazard of
    disorder d is onset_d * onset_multiplier * exp(this)."""
    return (
        group + l_event * event + l_lonely * loneliness + l_oud * using + l_craving * craving
        + l_comorbidity * other_disorder
    )  # fmt: skip


def step(m) -> None:
    _onset_and_remission(*_arguments(m))


@per_parameters
def _arguments(m) -> tuple:
    p, dt, pop = m.params.mental_health, m.dt_years, m.population
    group, top = m.factors.get("mental_health", pop.group, ses=p.ses_hr, ace=p.ace_hr)
    l_care, l_int = log_hr(p.care_remission_hr), log_hr(p.integrated_remission_hr)
    l_sup, l_oud_rem = log_hr(p.support_remission_hr), log_hr(p.oud_remission_hr)
    ratios = {
        name: log_hr(hr)
        for name, hr in (
            ("l_event", p.event_hr), ("l_lonely", p.loneliness_hr), ("l_oud", p.oud_hr),
            ("l_craving", p.craving_hr), ("l_comorbidity", p.comorbidity_hr),
        )
    }  # fmt: skip
    # The largest person-level log hazard the parameters allow: the same terms, each ratio's log at
    # least 0 and each factor at its largest (1), plus a margin for float32 rounding: where the onset
    # buckets start.
    ceiling = np.float32(upper_bound(onset_log_hazard_person, group=top, **ratios) + 1e-3)
    p_remit = _remission_table(tuple(p.remission_rate), l_care, l_int, l_sup, l_oud_rem, dt)
    return bind(
        _onset_and_remission, m.shared(), scratch=m.scratch.view(np.int32), flat=pop.mh.reshape(-1), group=group,
        log_onset=log_values(tuple(p.onset_rate)) + log_hr(p.onset_multiplier), **ratios, ceiling=ceiling,
        p_remit=p_remit, p_remit_max=p_remit.max(axis=1), a_trait=rates.prob(p.trait_rate, dt),
    )  # fmt: skip


def _remission_table(rates_by_disorder, l_care, l_int, l_sup, l_oud, dt) -> np.ndarray:
    """Step probability of remission by disorder and code = in MH care + 2 integrated care
    + 4 family support + 8 active use."""
    code = np.arange(16)
    bits = [(code >> b) & 1 for b in range(4)]
    log_h = l_care * bits[0] + l_int * bits[1] + l_sup * bits[2] + l_oud * bits[3]
    h = np.asarray(rates_by_disorder, dtype=np.float64)[:, None] * np.exp(log_h)[None, :]
    return -np.expm1(-h * dt)


# Onset is thinned within buckets of people whose hazards lie within a factor of 2 of one another
# (bucket b: at most the ceiling / 2^b; the last takes everyone below). Thinning everyone at the
# population's largest hazard drew ~40 candidates per onset at 5,000 people, and more as the
# population (and so its largest hazard) grows; by bucket it draws at most ~2 per onset.
_BUCKETS = 16
_LN2 = math.log(2.0)
_INV_LN2 = np.float32(1.0 / _LN2)  # float32, so the bucket of a float32 hazard is vector code


@njit(inline=True)
def _bucket(ceiling, c):
    """Bucket of a log hazard c: how many factors of 2 it lies below the ceiling (the last takes all below)."""
    return min(max(np.int32((ceiling - c) * _INV_LN2), 0), _BUCKETS - 1)


@njit
def _onset_and_remission(
    mental_health_stream, scratch, scratch_f, flat, any_mh, distress, stage, group, recent, loneliness, craving,
    in_mh_care, care, family_support, dt,
    log_onset, l_event, l_lonely, l_oud, l_craving, l_comorbidity, ceiling, p_remit, p_remit_max, a_trait,
):  # fmt: skip
    s, common = mental_health_stream, scratch_f
    n = any_mh.size
    order = scratch[:n]  # people by bucket
    bucket = scratch[n : 2 * n]
    onsets = scratch[2 * n :]  # d * n + i for each onset of disorder d in person i this step
    n_disorders = log_onset.size
    # The person's part of the onset log hazard (the same for every disorder), and their bucket.
    # Plain arithmetic on every person, with no lookups or branches, so that it runs as vector code.
    for i in range(n):
        c = onset_log_hazard_person(
            group[i], l_event, recent[i], l_lonely, loneliness[i], l_oud, is_using(stage[i]), l_craving, craving[i],
            l_comorbidity, any_mh[i],
        )  # fmt: skip
        common[i] = c
        bucket[i] = _bucket(ceiling, c)
    # People in order of bucket, in row order within each (a counting sort). The four quarters of the
    # rows are counted and placed side by side, each with its own counts: one count waits on its own
    # last update whenever neighbours share a bucket (most do), four independent ones overlap. Within a
    # bucket the quarters follow one another, so the order is the rows' order all the same.
    q = n // 4  # rows per quarter; the last quarter also takes the n % 4 rows left over
    counts = np.zeros((4, _BUCKETS), np.int64)
    for j in range(q):
        counts[0, bucket[j]] += 1
        counts[1, bucket[q + j]] += 1
        counts[2, bucket[2 * q + j]] += 1
        counts[3, bucket[3 * q + j]] += 1
    for i in range(4 * q, n):
        counts[3, bucket[i]] += 1
    start = np.zeros(_BUCKETS + 1, np.int64)  # where each bucket starts
    fill = np.empty((4, _BUCKETS), np.int64)  # where each quarter's next person in each bucket goes
    for b in range(_BUCKETS):
        at = start[b]
        for r in range(4):
            fill[r, b] = at
            at += counts[r, b]
        start[b + 1] = at
    for j in range(q):
        for r in range(4):  # unrolled by the compiler: four independent placements
            i = r * q + j
            b = bucket[i]
            order[fill[r, b]] = i
            fill[r, b] += 1
    for i in range(4 * q, n):
        b = bucket[i]
        order[fill[3, b]] = i
        fill[3, b] += 1
    # Onset, disorder by disorder and bucket by bucket, thinned at the bucket's bound.
    k = 0
    for d in range(n_disorders):
        for b in range(_BUCKETS):
            lo, hi = start[b], start[b + 1]
            p_max = prob(math.exp(min(ceiling - b * _LN2 + log_onset[d], 50.0)), dt)
            if lo == hi or not p_max > 0.0:
                continue
            lq = log_skip(p_max)
            j = lo + gap(s, lq)
            while j < hi:
                i = order[j]
                if not flat[d * n + i] and uniform(s) * p_max < prob(math.exp(log_onset[d] + common[i]), dt):
                    if k == onsets.size:  # more onsets than room (extreme rates): keep the ones found
                        break
                    onsets[k] = d * n + i
                    k += 1
                j += 1 + gap(s, lq)
    # Remission of disorders active at the start of the step (onsets are applied after it), thinned
    # at the disorder's largest probability over the people who have any disorder, listed first (a
    # fifth of people or so: thinning over everyone drew five times the candidates). The hazard takes
    # one of 16 values per disorder (four yes/no factors), so its probability is looked up.
    # any_mh is "any disorder active" at the start of the step (kept in step with mh, invariants)
    anyone = bucket  # the buckets are no longer needed
    m_any = list_where(any_mh, anyone)
    for d in range(n_disorders):
        p_max = p_remit_max[d]
        if not p_max > 0.0:
            continue
        lq = log_skip(p_max)
        j = gap(s, lq)
        while j < m_any:
            i = anyone[j]
            if flat[d * n + i]:
                code = in_mh_care[i] + 2 * (care[i] == Care.INTEGRATED) + 4 * family_support[i] + 8 * is_using(stage[i])
                if uniform(s) * p_max < p_remit[d, code]:
                    flat[d * n + i] = False
            j += 1 + gap(s, lq)
    for j in range(k):
        flat[onsets[j]] = True
    # Distress relaxes toward 1 while a disorder is active and toward 0 otherwise (values below 1e-6
    # are set to 0: geometric decay would otherwise end in slow subnormal floats). Vector code again.
    a = np.float32(a_trait)
    # The four categories (agents.states.DISORDERS; the schema holds four rates) written out: a loop
    # over them here measured ~100 us a step slower at 100,000 people than one pass of plain arithmetic.
    for i in range(n):
        on = flat[i] | flat[n + i] | flat[2 * n + i] | flat[3 * n + i]
        any_mh[i] = on
        x = distress[i] + (np.float32(on) - distress[i]) * a
        distress[i] = x if x >= np.float32(1e-6) else np.float32(0.0)
