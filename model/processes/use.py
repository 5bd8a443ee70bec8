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
Competing hazards from one state are drawn together: an event at the total hazard, then which one
in proportion. All are decided from the stage at the start of the step.
Craving grows toward 1 in OUD (``craving_growth_rate``; times ``misuse_craving_factor`` in misuse),
fades in remission (``craving_decay_rate``) and faster on medication.
"""

from __future__ import annotations

import math

import numpy as np

from oudsim.agents.states import NEVER, Stage
from oudsim.model.jit import below, gap, list_where, log_skip, njit, prob, skip_bound, uniform
from oudsim.model.rates import log_hr, per_parameters, pos
from oudsim.model.transitions import append

# The transitions of this process, by the code the kernel gives them: the stage each leads to.
START, STOP, PROGRESS, REMIT, RELAPSE = range(5)
LEADS_TO = np.array([Stage.MISUSE, Stage.NONE, Stage.OUD, Stage.REMISSION, Stage.OUD], dtype=np.int8)


def step(m) -> None:
    m.flows["new_oud"] += _use(*_arguments(m), *m.log())


@per_parameters
def _arguments(m) -> tuple:
    p, pop, dt = m.params.use, m.population, m.dt_years
    static, top = m.factors.get("initiation", pop.group, age=p.age_hr, ses=p.ses_hr, ace=p.ace_hr)
    base = float(log_hr(p.initiation_rate * p.access_multiplier))
    l_mh, l_imp, l_peer = float(log_hr(p.mh_hr)), float(log_hr(p.impulsivity_hr)), float(log_hr(p.peer_hr))
    l_lone, l_event = float(log_hr(p.loneliness_hr)), float(log_hr(p.event_hr))
    # Largest initiation log hazard anyone can have (traits and loneliness are at most 1), for thinning.
    bound = base + top + pos(l_mh) + pos(l_imp) + pos(l_peer) * p.peer_cap + pos(l_lone) + pos(l_event)
    grow, fade = _craving_steps(
        p.craving_growth_rate, p.misuse_craving_factor, p.craving_decay_rate, p.medication_craving_decay_rate, dt
    )
    l_support, l_dysreg = float(log_hr(p.support_hr)), float(log_hr(p.dysregulation_hr))
    l_risk = float(log_hr(p.risk_appraisal_hr))
    l_crav_prog, l_mh_rem = float(log_hr(p.craving_progression_hr)), float(log_hr(p.mh_remission_hr))
    l_crav_rel, l_mh_rel = float(log_hr(p.craving_relapse_hr)), float(log_hr(p.mh_relapse_hr))
    # The largest hazard from each stage (every factor is a flag or a score in [0, 1]), for skip_bound.
    leave_misuse = p.cessation_rate * math.exp(pos(l_support)) + p.progression_rate * math.exp(
        min(pos(l_dysreg) + pos(l_risk) + pos(l_crav_prog), 700.0)
    )
    remit = p.natural_remission_rate * math.exp(min(pos(l_support) + pos(l_mh_rem), 700.0))
    relapse = p.relapse_rate * math.exp(min(pos(l_crav_rel) + pos(l_mh_rel) + pos(l_event) + pos(l_lone), 700.0))
    return (
        m.streams["use"], m.scratch, m.scratch_flags, pop.stage, pop.any_mh, m.recent, pop.trait_base, pop.distress,
        pop.using_ties, pop.loneliness, pop.family_support, pop.craving, static, pop.stage_since, pop.waiting,
        pop.wait_since, pop.lost_tolerance_until,
        m.params.mental_health.trait_increment, base, l_mh, l_imp, l_peer, float(p.peer_cap), l_lone, l_event, bound,
        p.cessation_rate, l_support, p.progression_rate, l_dysreg, l_risk, l_crav_prog,
        p.natural_remission_rate, l_mh_rem, p.relapse_rate, l_crav_rel, l_mh_rel,
        skip_bound(leave_misuse * dt), skip_bound(remit * dt), skip_bound(relapse * dt), grow, fade, dt,
        LEADS_TO, m.params.treatment.post_care_weeks, NEVER,
    )  # fmt: skip


def _craving_steps(growth: float, misuse_factor: float, decay: float, medication_decay: float, dt: float) -> tuple:
    """Share of the way craving grows toward 1 and fades toward 0 in a step, by stage."""
    grow = np.array([prob(r, dt) for r in (0, growth * misuse_factor, growth, 0, 0, 0)], dtype=np.float32)
    fade = np.array([prob(r, dt) for r in (0, 0, 0, medication_decay, decay, 0)], dtype=np.float32)
    grow.flags.writeable = fade.flags.writeable = False
    return grow, fade


@njit
def _use(
    s, scratch, flags, stage, any_mh, recent, trait_base, distress, using_ties, loneliness, family_support, craving,
    static, stage_since, waiting, wait_since, lost_tolerance_until, inc,
    base, l_mh, l_imp, l_peer, peer_cap, l_lone, l_event, bound,
    cessation, l_support, progression, l_dysreg, l_risk, l_crav_prog,
    natural_remission, l_mh_rem, relapse_rate, l_crav_rel, l_mh_rel, u_misuse, u_remit, u_relapse, grow, fade, dt,
    leads_to, post_care_weeks, never, table, count, uid, week,
):  # fmt: skip
    """Starting, stopping, progressing, remitting and relapsing, decided from the stages at the start of
    the step, then applied and logged (model.transitions). Returns how many progressed to OUD."""
    n = stage.size
    found = scratch[:n]  # rows found, in the order found
    which = scratch[n : 2 * n]  # and the transition of each
    k = 0
    # none -> misuse: candidates at the bound, exact hazard at candidates only
    p_max = prob(math.exp(min(bound, 50.0)), dt)
    if p_max > 0.0:
        lq = log_skip(p_max)
        i = gap(s, lq)
        while i < n:
            if stage[i] == 0:
                impulsivity = min(trait_base[0, i] + inc * distress[i], 1.0)
                lh = base + static[i] + l_mh * any_mh[i] + l_imp * impulsivity
                lh += l_peer * min(using_ties[i], peer_cap) + l_lone * loneliness[i] + l_event * recent[i]
                if uniform(s) * p_max < prob(math.exp(lh), dt):
                    which[k] = START
                    found[k] = i
                    k += 1
            i += 1 + gap(s, lq)
    # Everyone else using or recovering (misuse, OUD, treatment, remission), listed first in row order
    # (a few percent of people), then walked with their draws.
    for i in range(n):
        flags[i] = (stage[i] != 0) & (stage[i] != 5)
    listed = scratch[2 * n : 3 * n]
    for j in range(list_where(flags, listed)):
        i = listed[j]
        st = stage[i]
        # Each hazard's exponential draw is made from a uniform first: at or above the stage's u_ bound
        # (skip_bound) no one can have the event, and the hazard is not worked out.
        if st == 1:  # misuse -> none (cessation) | OUD (progression), competing
            u = uniform(s)
            if u < u_misuse:
                h_stop = cessation * math.exp(l_support * family_support[i])
                dysregulation = min(trait_base[2, i] + inc * distress[i], 1.0)
                risk = min(trait_base[1, i] + inc * distress[i], 1.0)
                h_prog = progression * math.exp(l_dysreg * dysregulation + l_risk * risk + l_crav_prog * craving[i])
                total = h_stop + h_prog
                if below(u, total * dt):
                    which[k] = STOP if uniform(s) * total < h_stop else PROGRESS
                    found[k] = i
                    k += 1
        elif st == 2:  # untreated OUD -> remission
            u = uniform(s)
            if u < u_remit and below(
                u, natural_remission * math.exp(l_support * family_support[i] + l_mh_rem * any_mh[i]) * dt
            ):
                which[k] = REMIT
                found[k] = i
                k += 1
        elif st == 4:  # remission -> OUD (relapse)
            u = uniform(s)
            if u < u_relapse:
                lh = l_crav_rel * craving[i] + l_mh_rel * any_mh[i] + l_event * recent[i] + l_lone * loneliness[i]
                if below(u, relapse_rate * math.exp(lh) * dt):
                    which[k] = RELAPSE
                    found[k] = i
                    k += 1
        # Craving grows toward 1 in use, fades in remission and faster on medication (stage at step start).
        c = craving[i] + grow[st] * (1.0 - craving[i]) - fade[st] * craving[i]
        craving[i] = c if c >= 1e-6 else 0.0
    # All decided from the stages at the start of the step; now applied.
    n_progress = 0
    for j in range(k):
        i, t = found[j], which[j]
        append(table, count, uid, i, stage[i], leads_to[t], week)
        stage[i] = leads_to[t]
        stage_since[i] = week
        if t == REMIT:  # off the treatment waitlist
            waiting[i] = False
            wait_since[i] = never
        elif t == RELAPSE:  # after abstinence, tolerance is lost for the first weeks
            lost_tolerance_until[i] = week + post_care_weeks
        n_progress += t == PROGRESS
    return n_progress
