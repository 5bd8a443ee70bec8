"""5. Opioid use: initiation, cessation, progression to OUD, natural remission, relapse; craving.

Hazards (annual), each switched off by setting its ratio to 1:
  none -> misuse:   initiation_rate * access * age_HR * SES_HR * ACE_HR
                    * (mh_HR * disorder_HR[d] / impulsivity_HR^trait_increment)^(disorder)
                    * impulsivity_HR^impulsivity * peer_HR^min(using ties, peer_cap)
                    * loneliness_HR^loneliness * event_HR^(recent event)
  misuse -> none:   cessation_rate * support_HR^(family support)
  misuse -> OUD:    progression_rate * dysregulation_HR^dysregulation
                    * risk_appraisal_HR^(impaired risk appraisal) * craving_progression_HR^craving
  OUD -> remission: natural_remission_rate * support_HR^(family) * mh_remission_HR^(disorder)
  remission -> OUD: (relapse_rate + early_relapse[route] * exp(-years in remission / consolidation))
                    * craving_relapse_HR^craving * mh_relapse_HR^(disorder)
                    * event_HR^(recent event) * loneliness_HR^loneliness
                    route: the remission began on leaving care (early_relapse_after_care, E16) or
                    naturally (early_relapse_natural); after about a year the excess has faded: sustained
                    remission.
(mh_HR is E9's total ratio: the part the disorder's impulsivity carries is taken out of the direct term;
disorder_HR[d] is the ratio of the person's active disorder d with the largest one, relative to
depression, E8.)
Competing hazards from one state are drawn together: an event at the total hazard, then which one
in proportion. All are decided from the stage at the start of the step.
Craving grows toward 1 in OUD (``craving_growth_rate``; times ``misuse_craving_factor`` in misuse),
fades in remission (``craving_decay_rate``) and faster on medication.
"""

from __future__ import annotations

import math

import numpy as np

from oudsim.agents.states import NEVER, Stage
from oudsim.model.binding import bind
from oudsim.model.jit import below, gap, keyed_uniform, list_where, log_skip, njit, prob, skip_bound, step_key, uniform
from oudsim.model.rates import log_hr, per_parameters, upper_bound
from oudsim.model.transitions import append

STREAMS = ("use",)
FLOWS = ("new_oud",)

# The transitions of this process, by the code the kernel gives them: the stage each leads to.
START, STOP, PROGRESS, REMIT, RELAPSE = range(5)
LEADS_TO = np.array([Stage.MISUSE, Stage.NONE, Stage.OUD, Stage.REMISSION, Stage.OUD], dtype=np.int8)


# The hazards (annual), as in the module's docstring and docs/ODD.md; every l_* is a log hazard ratio.
@njit(inline=True)
def initiation_log_hazard(
    base, group, l_mh, disorder, l_disorder, l_impulsivity, impulsivity, l_peer, peers, l_lonely, loneliness, l_event,
    event,
):  # fmt: skip
    """none -> misuse, in log: log(initiation_rate * access) + log(age, SES, ACE ratios)
    + (log direct mh_HR + l_disorder) * disorder + ...; l_disorder: the largest log disorder_HR among
    the person's active disorders."""
    return (
        base + group + (l_mh + l_disorder) * disorder + l_impulsivity * impulsivity + l_peer * peers
        + l_lonely * loneliness + l_event * event
    )  # fmt: skip


@njit(inline=True)
def largest_disorder_ratio(mh, i, l_disorder_hr):
    """The largest log disorder_HR among person i's active disorders (0 with none)."""
    top = -np.inf
    for d in range(l_disorder_hr.size):
        if mh[d, i] and l_disorder_hr[d] > top:
            top = l_disorder_hr[d]
    return top if top > -np.inf else 0.0


@njit(inline=True)
def cessation_hazard(cessation, l_support, support):
    """misuse -> none"""
    return cessation * math.exp(l_support * support)


@njit(inline=True)
def progression_hazard(progression, l_dysregulation, dysregulation, l_risk, risk, l_craving, craving):
    """misuse -> OUD"""
    return progression * math.exp(l_dysregulation * dysregulation + l_risk * risk + l_craving * craving)


@njit(inline=True)
def remission_hazard(remission, l_support, support, l_mh, disorder):
    """untreated OUD -> remission (natural remission)"""
    return remission * math.exp(l_support * support + l_mh * disorder)


@njit(inline=True)
def relapse_hazard(
    relapse, early, consolidation, l_craving, craving, l_mh, disorder, l_event, event, l_lonely, loneliness
):  # fmt: skip
    """remission -> OUD: (relapse_rate + early excess of the remission's route * exp(-years in remission
    / consolidation time)) * ratios; ``consolidation`` is that exponential, 1 on the first day."""
    return (relapse + early * consolidation) * math.exp(
        l_craving * craving + l_mh * disorder + l_event * event + l_lonely * loneliness
    )


def step(m) -> None:
    m.flows["new_oud"] += _use(*_arguments(m), m.log_table(), m.week)


def direct_mh_log_ratio(mh_hr: float, impulsivity_hr: float, trait_increment: float) -> float:
    """E9's ratio (``mh_hr``) is the total effect of a disorder on starting misuse; part of it comes
    through the impulsivity the disorder brings (up to ``trait_increment``, M2), so the direct term is
    log(mh_HR) - log(impulsivity_HR) * trait_increment: both together give mh_HR, not more."""
    return float(log_hr(mh_hr)) - float(log_hr(impulsivity_hr)) * trait_increment


@per_parameters
def _arguments(m) -> tuple:
    p, pop, dt = m.params.use, m.population, m.dt_years
    group, top = m.factors.get("initiation", pop.group, age=p.age_hr, ses=p.ses_hr, ace=p.ace_hr)
    peer_cap = float(p.peer_cap)
    ratios = {
        name: float(log_hr(hr))
        for name, hr in (
            ("l_impulsivity", p.impulsivity_hr), ("l_peer", p.peer_hr),
            ("l_lonely", p.loneliness_hr), ("l_event", p.event_hr), ("l_support", p.support_hr),
            ("l_dysregulation", p.dysregulation_hr), ("l_risk", p.risk_appraisal_hr),
            ("l_craving_progress", p.craving_progression_hr), ("l_mh_remit", p.mh_remission_hr),
            ("l_craving_relapse", p.craving_relapse_hr), ("l_mh_relapse", p.mh_relapse_hr),
        )
    }  # fmt: skip
    r = ratios
    r["l_mh_start"] = direct_mh_log_ratio(p.mh_hr, p.impulsivity_hr, m.params.mental_health.trait_increment)
    l_disorder = np.array([log_hr(hr) for hr in p.disorder_hr], dtype=np.float64)
    base = float(log_hr(p.initiation_rate * p.access_multiplier))
    # Bounds from the hazards' own terms (rates.upper_bound): the largest initiation log hazard, for
    # thinning, and the largest hazard out of each stage, for skip_bound.
    bound = upper_bound(
        initiation_log_hazard, base=base, group=top, l_mh=r["l_mh_start"], l_disorder=float(l_disorder.max()),
        l_impulsivity=r["l_impulsivity"],
        l_peer=r["l_peer"], peers=peer_cap, l_lonely=r["l_lonely"], l_event=r["l_event"],
    )  # fmt: skip
    leave_misuse = upper_bound(cessation_hazard, cessation=p.cessation_rate, l_support=r["l_support"]) + upper_bound(
        progression_hazard, progression=p.progression_rate, l_dysregulation=r["l_dysregulation"], l_risk=r["l_risk"],
        l_craving=r["l_craving_progress"],
    )  # fmt: skip
    remit = upper_bound(
        remission_hazard, remission=p.natural_remission_rate, l_support=r["l_support"], l_mh=r["l_mh_remit"]
    )
    relapse = upper_bound(
        relapse_hazard, relapse=p.relapse_rate, early=max(p.early_relapse_after_care, p.early_relapse_natural),
        l_craving=r["l_craving_relapse"], l_mh=r["l_mh_relapse"], l_event=r["l_event"], l_lonely=r["l_lonely"],
    )  # fmt: skip
    grow, fade = _craving_steps(
        p.craving_growth_rate, p.misuse_craving_factor, p.craving_decay_rate, p.medication_craving_decay_rate, dt
    )
    return bind(
        _use, m.shared(), group=group, trait_increment=m.params.mental_health.trait_increment, base=base,
        l_disorder_hr=l_disorder,
        peer_cap=peer_cap, bound=bound, **ratios, cessation=p.cessation_rate, progression=p.progression_rate,
        natural_remission=p.natural_remission_rate, relapse=p.relapse_rate,
        early_after_care=p.early_relapse_after_care, early_natural=p.early_relapse_natural,
        consolidation_steps=p.remission_consolidation_years * 52.0 / m.params.simulation.dt_weeks,
        u_misuse=skip_bound(leave_misuse * dt),
        u_remit=skip_bound(remit * dt), u_relapse=skip_bound(relapse * dt), grow=grow, fade=fade, leads_to=LEADS_TO,
        post_care_weeks=m.params.treatment.post_care_weeks,
    )  # fmt: skip


def _craving_steps(growth: float, misuse_factor: float, decay: float, medication_decay: float, dt: float) -> tuple:
    """Share of the way craving grows toward 1 and fades toward 0 in a step, by stage."""
    grow = np.array([prob(r, dt) for r in (0, growth * misuse_factor, growth, 0, 0, 0)], dtype=np.float32)
    fade = np.array([prob(r, dt) for r in (0, 0, 0, medication_decay, decay, 0)], dtype=np.float32)
    grow.flags.writeable = fade.flags.writeable = False
    return grow, fade


@njit
def _use(
    use_stream, scratch, flags, stage, any_mh, mh, recent, trait_base, distress, using_ties, loneliness, family_support,
    craving, group, stage_since, waiting, wait_since, lost_tolerance_until, after_care, trait_increment,
    base, l_mh_start, l_disorder_hr, l_impulsivity, l_peer, peer_cap, l_lonely, l_event, bound,
    cessation, l_support, progression, l_dysregulation, l_risk, l_craving_progress,
    natural_remission, l_mh_remit, relapse, early_after_care, early_natural, consolidation_steps, l_craving_relapse,
    l_mh_relapse, u_misuse, u_remit, u_relapse, grow, fade,
    dt, leads_to, post_care_weeks, count, uid, table, week,
):  # fmt: skip
    """Starting, stopping, progressing, remitting and relapsing, decided from the stages at the start of
    the step, then applied and logged (model.transitions). Returns how many progressed to OUD."""
    s, inc = use_stream, trait_increment
    key = step_key(s)  # before any draw: the state the stream was reseeded to this step
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
            # One draw for every candidate, whatever their stage: two scenario arms then keep drawing
            # the same numbers for the same people through the pass (common random numbers).
            u = uniform(s)
            if stage[i] == Stage.NONE:
                impulsivity = min(trait_base[0, i] + inc * distress[i], 1.0)
                l_disorder = largest_disorder_ratio(mh, i, l_disorder_hr) if any_mh[i] else 0.0
                lh = initiation_log_hazard(
                    base, group[i], l_mh_start, any_mh[i], l_disorder, l_impulsivity, impulsivity, l_peer,
                    min(using_ties[i], peer_cap), l_lonely, loneliness[i], l_event, recent[i],
                )  # fmt: skip
                if u * p_max < prob(math.exp(lh), dt):
                    which[k] = START
                    found[k] = i
                    k += 1
            i += 1 + gap(s, lq)
    # Everyone else using or recovering (misuse, OUD, treatment, remission), listed first in row order
    # (a few percent of people), then walked with their draws, keyed to the person (jit.keyed_uniform).
    for i in range(n):
        flags[i] = (stage[i] != Stage.NONE) & (stage[i] != Stage.DECEASED)
    listed = scratch[2 * n : 3 * n]
    for j in range(list_where(flags, listed)):
        i = listed[j]
        st = stage[i]
        # Each hazard's exponential draw is made from a uniform first: at or above the stage's u_ bound
        # (skip_bound) no one can have the event, and the hazard is not worked out.
        if st == Stage.MISUSE:  # misuse -> none (cessation) | OUD (progression), competing
            u = keyed_uniform(key, i, 0)
            if u < u_misuse:
                h_stop = cessation_hazard(cessation, l_support, family_support[i])
                dysregulation = min(trait_base[2, i] + inc * distress[i], 1.0)
                risk = min(trait_base[1, i] + inc * distress[i], 1.0)
                h_prog = progression_hazard(
                    progression, l_dysregulation, dysregulation, l_risk, risk, l_craving_progress, craving[i]
                )
                total = h_stop + h_prog
                if below(u, total * dt):
                    which[k] = STOP if keyed_uniform(key, i, 1) * total < h_stop else PROGRESS
                    found[k] = i
                    k += 1
        elif st == Stage.OUD:  # untreated OUD -> remission
            u = keyed_uniform(key, i, 0)
            if u < u_remit and below(
                u, remission_hazard(natural_remission, l_support, family_support[i], l_mh_remit, any_mh[i]) * dt
            ):
                which[k] = REMIT
                found[k] = i
                k += 1
        elif st == Stage.REMISSION:  # remission -> OUD (relapse)
            u = keyed_uniform(key, i, 0)
            if u < u_relapse:
                early = early_after_care if after_care[i] else early_natural
                consolidation = math.exp(-(week - stage_since[i]) / consolidation_steps)
                h = relapse_hazard(
                    relapse, early, consolidation, l_craving_relapse, craving[i], l_mh_relapse, any_mh[i], l_event,
                    recent[i], l_lonely, loneliness[i],
                )  # fmt: skip
                if below(u, h * dt):
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
        if t == REMIT:  # off the treatment waitlist; a natural remission
            waiting[i] = False
            wait_since[i] = NEVER
            after_care[i] = False
        elif t == RELAPSE:  # after abstinence, tolerance is lost for the first weeks
            lost_tolerance_until[i] = week + post_care_weeks
        n_progress += t == PROGRESS
    return n_progress
