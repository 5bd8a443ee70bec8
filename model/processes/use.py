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
Competing hazards from one state are drawn together (model.rates.compete).
Craving grows toward 1 in OUD (``craving_growth_rate``; times ``misuse_craving_factor`` in misuse),
fades in remission (``craving_decay_rate``) and faster on medication.
"""

from __future__ import annotations

import functools

import numpy as np

from agents.states import NEVER, Stage
from model.rates import F32, compete, events_bounded, flush_tiny, log_hr, occurs, per_unit, pos, prob, rows_where, when


def step(m) -> None:
    p, pop, rng, dt, wk = m.params.use, m.population, m.rng, m.dt_years, m.week
    st = pop.stage
    any_mh = pop.any_mh
    rec = m.recent
    inc = m.params.mental_health.trait_increment

    # none -> misuse: candidates at an upper bound of everyone's hazard, exact hazard at candidates only
    static, top = m.factors.get("initiation", pop.group, age=p.age_hr, ses=p.ses_hr, ace=p.ace_hr)
    base = log_hr(p.initiation_rate * p.access_multiplier)
    l_mh, l_imp, l_peer = log_hr(p.mh_hr), log_hr(p.impulsivity_hr), log_hr(p.peer_hr)
    l_lone, l_event = log_hr(p.loneliness_hr), log_hr(p.event_hr)
    bound = base + top + pos(l_mh) + pos(l_imp) + pos(l_peer) * p.peer_cap + pos(l_lone) + pos(l_event)

    def log_initiation(i: np.ndarray) -> np.ndarray:
        lh = base + static[i] + l_mh * any_mh[i] + l_imp * pop.trait(0, inc, i)
        lh += l_peer * np.minimum(pop.using_ties[i], F32(p.peer_cap))
        lh += l_lone * pop.loneliness[i] + l_event * rec[i]
        return lh

    start = events_bounded(rng, pop.n, bound, log_initiation, dt)
    start = start[st[start] == Stage.NONE.value]

    # misuse -> none | OUD
    i = rows_where(st == Stage.MISUSE.value)
    out = compete(
        rng,
        dt,
        F32(p.cessation_rate) * when(pop.family_support[i], p.support_hr),
        F32(p.progression_rate)
        * per_unit(p.dysregulation_hr, pop.trait(2, inc, i))
        * per_unit(p.risk_appraisal_hr, pop.trait(1, inc, i))
        * per_unit(p.craving_progression_hr, pop.craving[i]),
    )
    stop, progress = i[out == 1], i[out == 2]

    # OUD (untreated) -> remission
    i = rows_where(st == Stage.OUD.value)
    h = F32(p.natural_remission_rate) * when(pop.family_support[i], p.support_hr) * when(any_mh[i], p.mh_remission_hr)
    remit = i[occurs(rng, h, dt)]

    # remission -> OUD (relapse)
    i = rows_where(st == Stage.REMISSION.value)
    h = (
        F32(p.relapse_rate)
        * per_unit(p.craving_relapse_hr, pop.craving[i])
        * when(any_mh[i], p.mh_relapse_hr)
        * when(rec[i], p.event_hr)
        * per_unit(p.loneliness_hr, pop.loneliness[i])
    )
    relapse = i[occurs(rng, h, dt)]

    _craving(m)
    m.set_stage(start, Stage.MISUSE)
    m.set_stage(stop, Stage.NONE)
    m.set_stage(progress, Stage.OUD)
    m.set_stage(remit, Stage.REMISSION)
    m.set_stage(relapse, Stage.OUD)
    pop.waiting[remit] = False
    pop.wait_since[remit] = NEVER
    # Relapse after abstinence: tolerance is lost for the first weeks.
    pop.lost_tolerance_until[relapse] = wk + m.params.treatment.post_care_weeks
    m.flows["new_oud"] += progress.size


@functools.lru_cache(maxsize=256)  # rebuilt only when the rates change
def _craving_rates(growth: float, misuse_factor: float, decay: float, medication_decay: float) -> tuple:
    """Annual craving growth and decay rates by stage."""
    grow = np.array([0, growth * misuse_factor, growth, 0, 0, 0], dtype=np.float32)
    fade = np.array([0, 0, 0, medication_decay, decay, 0], dtype=np.float32)
    grow.flags.writeable = fade.flags.writeable = False
    return grow, fade


def _craving(m) -> None:
    p, pop, dt = m.params.use, m.population, m.dt_years
    i = rows_where((pop.stage != Stage.NONE.value) & (pop.stage != Stage.DECEASED.value))
    st, c = pop.stage[i], pop.craving[i]
    grow_by_stage, decay_by_stage = _craving_rates(
        p.craving_growth_rate, p.misuse_craving_factor, p.craving_decay_rate, p.medication_craving_decay_rate
    )
    grow, decay = grow_by_stage.take(st), decay_by_stage.take(st)
    c = c + prob(grow, dt) * (1.0 - c) - prob(decay, dt) * c
    flush_tiny(c)
    pop.craving[i] = c
