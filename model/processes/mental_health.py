"""2. Mental health: onset and remission of depression, anxiety and PTSD, and the traits they move.

Onset rate of disorder d for person i:
    onset_d * onset_multiplier * ACE_HR[ace] * SES_HR[ses] * event_HR^(recent event) * loneliness_HR^loneliness
            * oud_HR^(active use) * craving_HR^craving * comorbidity_HR^(another disorder active)
Remission rate:
    remission_d * care_HR^(in MH care) * integrated_HR^(integrated care) * support_HR^(family support)
                * oud_remission_HR^(active use)
Traits (impulsivity, impaired risk appraisal, emotional dysregulation) are
``min(trait_base + trait_increment * distress, 1)``, where distress relaxes toward 1 while any disorder
is active and toward 0 otherwise, at ``trait_rate``.
"""

from __future__ import annotations

import numpy as np

from agents.states import Care
from model.processes.life_events import recent
from model.rates import F32, events, flush_tiny, log_by_group, log_hr, prob


def step(m) -> None:
    p, pop, dt = m.params.mental_health, m.population, m.dt_years
    mh, any_mh = pop.mh, pop.any_mh
    active_use = pop.active_use
    common = log_by_group(pop.group, ses=p.ses_hr, ace=p.ace_hr)
    common += log_hr(p.event_hr) * recent(m)
    common += log_hr(p.loneliness_hr) * pop.loneliness
    common += log_hr(p.oud_hr) * active_use
    common += log_hr(p.craving_hr) * pop.craving
    # For a disorder not yet active, "another disorder is active" is just "any disorder is active".
    common += log_hr(p.comorbidity_hr) * any_mh
    common += log_hr(p.onset_multiplier)

    rem = log_hr(p.care_remission_hr) * pop.in_mh_care
    rem += log_hr(p.integrated_remission_hr) * (pop.care == Care.INTEGRATED)
    rem += log_hr(p.support_remission_hr) * pop.family_support
    rem += log_hr(p.oud_remission_hr) * active_use

    onset = _log_rates(p.onset_rate)[:, None] + common[None, :]
    remission = _log_rates(p.remission_rate)[:, None] + rem[None, :]
    log_rate = onset + mh * (remission - onset)  # remission where active, onset where not
    flips = events(m.rng, log_rate, dt)
    mh.reshape(-1)[flips] ^= True
    np.any(mh, axis=0, out=any_mh)

    # Distress (what moves the traits) relaxes toward 1 while a disorder is active, toward 0 otherwise.
    pop.distress += (any_mh - pop.distress) * prob(p.trait_rate, dt)
    flush_tiny(pop.distress)


def _log_rates(rates: list[float]) -> np.ndarray:
    return np.log(np.maximum(np.asarray(rates, dtype=F32), F32(1e-30)))
