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
from numba import prange

from oudsim.agents.states import Care, is_using
from oudsim.model import rates
from oudsim.model.binding import bind
from oudsim.model.jit import (
    block_key,
    gap,
    keyed_bits,
    lane_at_least,
    lane_below,
    list_where,
    log_skip,
    njit,
    prob,
    seed_block,
    step_key,
)
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
    # least 0 and each factor at its largest (1), plus a margin for float32 rounding: the thinning bound.
    ceiling = np.float32(upper_bound(onset_log_hazard_person, group=top, **ratios) + 1e-3)
    log_onset = log_values(tuple(p.onset_rate)) + log_hr(p.onset_multiplier)
    p_band = _band_bounds(ceiling, log_onset, dt)
    p_max = float(p_band[:, 0].max())  # the thinning bound
    assert log_onset.size <= 4, "one keyed draw holds four uniforms (jit.lane_below)"
    p_remit = _remission_table(tuple(p.remission_rate), l_care, l_int, l_sup, l_oud_rem, dt)
    return bind(
        _onset_and_remission, m.shared(), scratch=m.scratch.view(np.int32), flat=pop.mh.reshape(-1), group=group,
        log_onset=log_onset, **ratios, ceiling=ceiling, q_band=p_band / p_max, p_max=p_max,
        p_remit=p_remit, a_trait=rates.prob(p.trait_rate, dt),
    )  # fmt: skip


# Each candidate's draw is first held against a bound on their onset probability, looked up by how
# many factors of 2 their log hazard lies below the ceiling (the last band takes everyone below): most
# candidates fall above it and are turned down without working out the exact probability (an exp and
# an expm1 each).
_BANDS = 16
_INV_LN2 = np.float32(1.0 / math.log(2.0))  # float32, so the band of a float32 hazard is vector code


def _band_bounds(ceiling: float, log_onset: np.ndarray, dt: float) -> np.ndarray:
    """Step probability of onset of disorder d for a person in band b at most: the hazard at the
    band's top, ceiling - b * ln 2, and a margin for the float32 rounding of the band (the thinning
    bound is band 0 of the likeliest disorder)."""
    top = float(ceiling) - np.arange(_BANDS) * math.log(2.0) + 1e-4
    return -np.expm1(-np.exp(np.minimum(np.asarray(log_onset)[:, None] + top[None, :], 50.0)) * dt)


@njit(inline=True)
def _band(ceiling, c):
    """Band of a log hazard c: how many factors of 2 it lies below the ceiling."""
    return min(max(np.int32((ceiling - c) * _INV_LN2), 0), _BANDS - 1)


def _remission_table(rates_by_disorder, l_care, l_int, l_sup, l_oud, dt) -> np.ndarray:
    """Step probability of remission by disorder and code = in MH care + 2 integrated care
    + 4 family support + 8 active use."""
    code = np.arange(16)
    bits = [(code >> b) & 1 for b in range(4)]
    log_h = l_care * bits[0] + l_int * bits[1] + l_sup * bits[2] + l_oud * bits[3]
    h = np.asarray(rates_by_disorder, dtype=np.float64)[:, None] * np.exp(log_h)[None, :]
    return -np.expm1(-h * dt)


# People a block of the onset walk: each block has a random stream of its own (model.jit.seed_block).
_ROW_BLOCK = 4096


@njit(threaded=True)
def _onset_and_remission(
    mental_health_stream, scratch, scratch_f, flat, any_mh, distress, stage, group, recent, loneliness, craving,
    in_mh_care, care, family_support, dt,
    log_onset, l_event, l_lonely, l_oud, l_craving, l_comorbidity, ceiling, q_band, p_max, p_remit, a_trait,
):  # fmt: skip
    key = step_key(mental_health_stream)  # before any draw: the state the stream was reseeded to this step
    walk_key = block_key(mental_health_stream)
    n = any_mh.size
    blocks = (n + _ROW_BLOCK - 1) // _ROW_BLOCK
    found = np.empty(blocks, dtype=np.int64)  # onsets found in each block
    common, band = scratch_f, scratch[n : 2 * n]
    # The person's part of the onset log hazard (the same for every disorder), and their band. Plain
    # arithmetic on every person, with no lookups or branches, so that it runs as vector code.
    for i in prange(n):
        c = onset_log_hazard_person(
            group[i], l_event, recent[i], l_lonely, loneliness[i], l_oud, is_using(stage[i]), l_craving, craving[i],
            l_comorbidity, any_mh[i],
        )  # fmt: skip
        common[i] = c
        band[i] = _band(ceiling, c)
    for blk in prange(blocks):
        first, last = blk * _ROW_BLOCK, min(n, (blk + 1) * _ROW_BLOCK)
        found[blk] = _block_onset_and_remission(
            blk, first, last, key, walk_key, scratch, scratch_f, flat, any_mh, stage, group, recent, loneliness,
            craving, in_mh_care, care, family_support, dt, log_onset, l_event, l_lonely, l_oud, l_craving,
            l_comorbidity, ceiling, q_band, p_max, p_remit,
        )  # fmt: skip
    for blk in prange(blocks):
        first, last = blk * _ROW_BLOCK, min(n, (blk + 1) * _ROW_BLOCK)
        onsets = scratch[2 * n + 4 * first : 2 * n + 4 * last]  # (room: one onset per person and disorder)
        for j in range(found[blk]):
            flat[onsets[j]] = True
    # Distress relaxes toward 1 while a disorder is active and toward 0 otherwise (values below 1e-6
    # are set to 0: geometric decay would otherwise end in slow subnormal floats). Vector code again.
    a = np.float32(a_trait)
    # The four categories (agents.states.DISORDERS; the schema holds four rates) written out: a loop
    # over them here measured ~100 us a step slower at 100,000 people than one pass of plain arithmetic.
    for i in prange(n):
        on = flat[i] | flat[n + i] | flat[2 * n + i] | flat[3 * n + i]
        any_mh[i] = on
        x = distress[i] + (np.float32(on) - distress[i]) * a
        distress[i] = x if x >= np.float32(1e-6) else np.float32(0.0)


@njit
def _block_onset_and_remission(
    blk, first, last, key, walk_key, scratch, scratch_f, flat, any_mh, stage, group, recent, loneliness, craving,
    in_mh_care, care, family_support, dt, log_onset, l_event, l_lonely, l_oud, l_craving, l_comorbidity, ceiling,
    q_band, p_max, p_remit,
):  # fmt: skip
    """Onsets (listed, not yet applied) and remissions of the people in rows first..last-1; how many
    onsets."""
    common = scratch_f
    n = any_mh.size
    band = scratch[n : 2 * n]
    onsets = scratch[2 * n + 4 * first : 2 * n + 4 * last]  # d * n + i for each onset of disorder d in i
    n_disorders = log_onset.size
    # Onset: candidates at the largest onset probability the parameters allow (p_max: the gaps depend
    # on nothing else, so two scenario arms list the same candidates), from the block's own stream,
    # and for each candidate and disorder they do not have, a draw keyed to the person and disorder
    # (jit.keyed_uniform): the same number in both arms, whoever else has a disorder. (Thinning within
    # buckets of people of similar hazard drew fewer candidates, but any small change in anyone's
    # hazard reordered the buckets and with them everyone's draws: paired arms diverged in a third of
    # people's mental health within months, measured.)
    k = 0
    if p_max > 0.0:
        s = np.empty(4, dtype=np.uint64)
        seed_block(s, walk_key, blk)
        lq = log_skip(p_max)
        i = first + gap(s, lq)
        while i < last:
            bits = keyed_bits(key, i, 0)  # the candidate's four uniforms, one per disorder (jit.lane_below)
            b = band[i]
            for d in range(n_disorders):
                if lane_at_least(bits, d, q_band[d, b]) or flat[d * n + i]:
                    continue
                q = prob(math.exp(log_onset[d] + common[i]), dt) / p_max
                if lane_below(bits, d, key, i, 2 + d, q):
                    onsets[k] = d * n + i
                    k += 1
            i += 1 + gap(s, lq)
    # Remission of disorders active at the start of the step (onsets are applied after it), for the
    # people who have any disorder (a fifth of people or so), each by a keyed draw. The hazard takes
    # one of 16 values per disorder (four yes/no factors), so its probability is looked up.
    # any_mh is "any disorder active" at the start of the step (kept in step with mh, invariants)
    anyone = scratch[first:last]  # (the block's rows of the first n: a list of people)
    m_any = list_where(any_mh[first:last], anyone)
    for j in range(m_any):
        i = first + anyone[j]
        code = in_mh_care[i] + 2 * (care[i] == Care.INTEGRATED) + 4 * family_support[i] + 8 * is_using(stage[i])
        bits = keyed_bits(key, i, 1)  # the person's four uniforms, one per disorder (jit.lane_below)
        # Most people remit from nothing this step, which their draws' leading bits show at once: one
        # test for all four lanes (measured 2x faster than a branch per disorder in this loop).
        maybe = False
        for d in range(n_disorders):
            maybe |= not lane_at_least(bits, d, p_remit[d, code])
        if maybe:
            for d in range(n_disorders):
                if flat[d * n + i] and lane_below(bits, d, key, i, 6 + d, p_remit[d, code]):
                    flat[d * n + i] = False
    return k
