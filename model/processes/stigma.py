"""4. Stigma: attitudes spread through ties, contact lowers them, campaigns lower them from outside.

Attitude s_i in [0, 1] (1 = most stigmatising) moves each step by
    a_conf * (mean attitude of ties - s_i)
  + a_norm * (norm_i * (1 - campaign_strength) - s_i)
  - (1 - exp(-contact_rate * ties in treatment or remission * dt)) * s_i
with a_x = 1 - exp(-x_rate * dt). Internalised stigma of a person with a condition follows the stigma
they perceive among their ties: target = perceived * (1 for an opioid-use history, mh_stigma_factor for
a disorder alone) * dual_stigma_factor^(both), capped at 1, approached at ``internalisation_rate``;
without a condition it fades at the same rate.
"""

from __future__ import annotations

import functools

import numpy as np

from agents.states import Stage
from model.jit import njit
from model.rates import per_parameters, prob


@functools.lru_cache(maxsize=64)
def _contact_table(contact_rate: float, dt: float, max_ties: int) -> np.ndarray:
    """1 - exp(-contact_rate * k * dt) for k = 0 .. max_ties ties in recovery (looked up, not computed)."""
    return np.asarray(prob(contact_rate * np.arange(max_ties + 1, dtype=np.float64), dt), dtype=np.float32)


def step(m) -> None:
    pop = m.population
    _attitudes(
        pop.stigma, pop.internal_stigma, pop.perceived_stigma, pop.stigma_norm, pop.recovery_ties, pop.stage,
        pop.any_mh, *_constants(m),
    )  # fmt: skip


@per_parameters
def _constants(m) -> tuple:
    p, dt = m.params.stigma, m.dt_years
    return (
        _contact_table(p.contact_rate, dt, m.network.max_ties), prob(p.conformity_rate, dt),
        prob(p.norm_reversion_rate, dt), p.campaign_strength, p.mh_stigma_factor, p.dual_stigma_factor,
        prob(p.internalisation_rate, dt), Stage.NONE.value,
    )  # fmt: skip


@njit
def _attitudes(
    s, internal, perceived, norm, recovery_ties, stage, any_mh, contact, a_conf, a_norm, campaign, mh_factor,
    dual_factor, a_int, none,
):  # fmt: skip
    keep = np.float32(1.0 - a_conf - a_norm)
    w_conf = np.float32(a_conf)
    w_norm = np.float32(a_norm * (1.0 - campaign))
    for i in range(s.size):
        x = s[i] * (keep - contact[int(recovery_ties[i])]) + w_conf * perceived[i] + w_norm * norm[i]
        x = min(max(x, 0.0), 1.0)
        s[i] = x if x >= 1e-6 else 0.0  # no slow subnormal floats from geometric decay
        # 1 for an opioid-use history, mh_stigma_factor for a disorder alone (<= 1), 0 otherwise
        user = stage[i] != none
        factor = 1.0 if user else (mh_factor if any_mh[i] else 0.0)
        if user and any_mh[i]:
            factor *= dual_factor
        target = min(perceived[i] * factor, 1.0)
        y = internal[i] * (1.0 - a_int) + a_int * target
        internal[i] = y if y >= 1e-6 else 0.0
