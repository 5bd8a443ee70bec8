"""2. Mental health: onset and remission of depression, anxiety and PTSD, and the traits they move.

Onset rate of disorder d for person i:
    onset_d * onset_multiplier * ACE_HR[ace] * SES_HR[ses] * event_HR^(recent event)
            * loneliness_HR^loneliness * oud_HR^(active use) * craving_HR^craving
            * comorbidity_HR^(another disorder active)
Remission rate:
    remission_d * care_HR^(in MH care) * integrated_HR^(integrated care) * support_HR^(family support)
                * oud_remission_HR^(active use)
Traits (impulsivity, impaired risk appraisal, emotional dysregulation) are
``min(trait_base + trait_increment * distress, 1)``, where distress relaxes toward 1 while any disorder
is active and toward 0 otherwise, at ``trait_rate``.
"""

from __future__ import annotations

import math

import numpy as np

from agents.states import ACTIVE_USE, Care
from model.rates import F32, bernoulli_indices, flush_tiny, log_hr, log_values, occurs, prob, rows_where


def step(m) -> None:
    p, pop, rng, dt = m.params.mental_health, m.population, m.rng, m.dt_years
    mh, any_mh, n = pop.mh, pop.any_mh, pop.n
    flat = mh.reshape(-1)
    active_use = ACTIVE_USE.take(pop.stage)  # take: indexing with an int8 array costs ~3 us more

    # Onset. For a disorder not yet active, "another disorder is active" is just "any is active".
    static, _ = m.factors.get("mental_health", pop.group, ses=p.ses_hr, ace=p.ace_hr)
    common = static + log_hr(p.event_hr) * m.recent
    common += log_hr(p.loneliness_hr) * pop.loneliness
    common += log_hr(p.oud_hr) * active_use
    common += log_hr(p.craving_hr) * pop.craving
    common += log_hr(p.comorbidity_hr) * any_mh
    log_onset = log_values(tuple(p.onset_rate)) + log_hr(p.onset_multiplier)
    # Thinning over (disorder, person): candidates at the largest onset probability, kept in proportion.
    p_max = prob(math.exp(min(float(common.max()) + float(log_onset.max()), 50.0)), dt)
    cand = bernoulli_indices(rng, 3 * n, p_max)
    d, i = np.divmod(cand, n)
    p_i = prob(np.exp(log_onset[d] + common[i]), dt)
    onset = cand[(rng.random(cand.size, dtype=F32) * F32(p_max) < p_i) & ~flat[cand]]

    # Remission, among active disorders only.
    act = rows_where(flat)
    d, i = np.divmod(act, n)
    rem = log_values(tuple(p.remission_rate))[d]
    rem += log_hr(p.care_remission_hr) * pop.in_mh_care[i]
    rem += log_hr(p.integrated_remission_hr) * (pop.care[i] == Care.INTEGRATED.value)
    rem += log_hr(p.support_remission_hr) * pop.family_support[i]
    rem += log_hr(p.oud_remission_hr) * active_use[i]
    remit = act[occurs(rng, np.exp(rem), dt)]

    flat[onset] = True
    flat[remit] = False
    np.logical_or.reduce(mh, axis=0, out=any_mh)  # np.any without its Python wrapper
    # Distress (what moves the traits) relaxes toward 1 while a disorder is active, toward 0 otherwise.
    pop.distress += (any_mh - pop.distress) * F32(prob(p.trait_rate, dt))
    flush_tiny(pop.distress)
