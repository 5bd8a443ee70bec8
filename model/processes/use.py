"""5. Opioid use: initiation, cessation, progression to OUD, natural remission, relapse; craving.

Hazards (annual), each switched off by setting its ratio to 1:
  none -> misuse:   initiation_rate * access * age_HR * SES_HR * ACE_HR * mh_HR^(disorder)
                    * impulsivity_HR^impulsivity * peer_HR^min(using ties, peer_cap)
                    * loneliness_HR^loneliness * event_HR^(recent event)
  misuse -> none:   cessation_rate * support_HR^(family support)
  misuse -> OUD:    progression_rate * dysregulation_HR^dysregulation
                    * risk_appraisal_HR^(impaired risk appraisal) * craving_progression_HR^craving
  OUD -> remission: natural_remission_rate * support_HR^(family) * mh_remission_HR^(disorder)
  remission -> OUD: relapse_rate * craving_relapse_HR^craving * mh_relapse_HR^(disorder)
                    * event_HR^(recent event) * loneliness_HR^loneliness
Competing hazards from one state share one uniform draw (model.rates.compete).
Craving grows toward 1 in OUD (``craving_growth_rate``; times ``misuse_craving_factor`` in misuse),
fades in remission (``craving_decay_rate``) and faster on medication.
"""

from __future__ import annotations

import numpy as np

from agents.states import Stage
from model.processes.life_events import recent
from model.rates import compete, per_unit, prob, table, when


def step(m) -> None:
    p, pop, rng, dt, wk = m.params.use, m.population, m.rng, m.dt_years, m.week
    st = pop.stage
    any_mh = pop.any_mh
    rec = recent(m)
    u = rng.random(pop.n, dtype=np.float32)

    # none -> misuse (computed for everyone: almost everyone is at risk)
    none = st == Stage.NONE
    h = (
        np.float32(p.initiation_rate * p.access_multiplier)
        * table(p.age_hr, pop.age_band)
        * table(p.ses_hr, pop.ses)
        * table(p.ace_hr, pop.ace)
        * when(any_mh, p.mh_hr)
        * per_unit(p.impulsivity_hr, pop.traits[0])
        * np.power(np.float32(p.peer_hr), np.minimum(pop.using_ties, p.peer_cap))
        * per_unit(p.loneliness_hr, pop.loneliness)
        * when(rec, p.event_hr)
    )
    start = np.flatnonzero(none & (u < prob(h, dt)))

    # misuse -> none | OUD
    i = np.flatnonzero(st == Stage.MISUSE)
    tr = pop.traits
    out = compete(
        u[i], dt,
        np.float32(p.cessation_rate) * when(pop.family_support[i], p.support_hr),
        np.float32(p.progression_rate)
        * per_unit(p.dysregulation_hr, tr[2, i])
        * per_unit(p.risk_appraisal_hr, tr[1, i])
        * per_unit(p.craving_progression_hr, pop.craving[i]),
    )
    stop, progress = i[out == 1], i[out == 2]

    # OUD (untreated) -> remission
    i = np.flatnonzero(st == Stage.OUD)
    h = np.float32(p.natural_remission_rate) * when(pop.family_support[i], p.support_hr) * when(any_mh[i], p.mh_remission_hr)
    remit = i[u[i] < prob(h, dt)]

    # remission -> OUD (relapse)
    i = np.flatnonzero(st == Stage.REMISSION)
    h = (
        np.float32(p.relapse_rate)
        * per_unit(p.craving_relapse_hr, pop.craving[i])
        * when(any_mh[i], p.mh_relapse_hr)
        * when(rec[i], p.event_hr)
        * per_unit(p.loneliness_hr, pop.loneliness[i])
    )
    relapse = i[u[i] < prob(h, dt)]

    _craving(m)
    m.set_stage(start, Stage.MISUSE)
    m.set_stage(stop, Stage.NONE)
    m.set_stage(progress, Stage.OUD)
    m.set_stage(remit, Stage.REMISSION)
    m.set_stage(relapse, Stage.OUD)
    pop.waiting[remit] = False
    # Relapse after abstinence: tolerance is lost for the first weeks.
    pop.lost_tolerance_until[relapse] = wk + m.params.treatment.post_care_weeks
    m.flows["new_oud"] += progress.size


def _craving(m) -> None:
    p, pop, dt = m.params.use, m.population, m.dt_years
    st = pop.stage
    c = pop.craving
    grow = np.where(st == Stage.OUD, np.float32(p.craving_growth_rate),
                    np.where(st == Stage.MISUSE, np.float32(p.craving_growth_rate * p.misuse_craving_factor), np.float32(0.0)))
    decay = np.where(st == Stage.REMISSION, np.float32(p.craving_decay_rate),
                     np.where(st == Stage.TREATMENT, np.float32(p.medication_craving_decay_rate), np.float32(0.0)))
    c += prob(grow, dt) * (1.0 - c) - prob(decay, dt) * c
