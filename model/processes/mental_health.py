"""2. Mental health: onset and remission of depression, anxiety and PTSD, and the traits they move.

Onset rate of disorder d for person i:
    onset_d * ACE_HR[ace] * SES_HR[ses] * event_HR^(recent event) * loneliness_HR^loneliness
            * oud_HR^(active use) * craving_HR^craving * comorbidity_HR^(another disorder active)
Remission rate:
    remission_d * care_HR^(in MH care) * integrated_HR^(integrated care) * support_HR^(family support)
                * oud_remission_HR^(active use)
Traits (impulsivity, impaired risk appraisal, emotional dysregulation) relax toward
``baseline + trait_increment * (any disorder active)`` at ``trait_rate``.
"""

from __future__ import annotations

import numpy as np

from agents.states import Care
from model.processes.life_events import recent
from model.rates import per_unit, prob, table, when


def step(m) -> None:
    p, pop, dt = m.params.mental_health, m.population, m.dt_years
    mh = pop.mh
    active_use = pop.active_use
    n_active = mh.sum(axis=0, dtype=np.int8)
    others = (n_active[None, :] - mh) > 0
    common = (
        table(p.ace_hr, pop.ace)
        * table(p.ses_hr, pop.ses)
        * when(recent(m), p.event_hr)
        * per_unit(p.loneliness_hr, pop.loneliness)
        * when(active_use, p.oud_hr)
        * per_unit(p.craving_hr, pop.craving)
    )
    onset = np.asarray(p.onset_rate, dtype=np.float32)[:, None] * common[None, :]
    onset *= when(others, p.comorbidity_hr)
    rem_common = (
        when(pop.in_mh_care, p.care_remission_hr)
        * when(pop.care == Care.INTEGRATED, p.integrated_remission_hr)
        * when(pop.family_support, p.support_remission_hr)
        * when(active_use, p.oud_remission_hr)
    )
    rem = np.asarray(p.remission_rate, dtype=np.float32)[:, None] * rem_common[None, :]
    rate = np.where(mh, rem, onset)
    flip = m.rng.random(mh.shape, dtype=np.float32) < prob(rate, dt)
    mh ^= flip
    target = np.minimum(pop.trait_base + np.float32(p.trait_increment) * mh.any(axis=0), 1.0)
    pop.traits += (target - pop.traits) * prob(p.trait_rate, dt)
