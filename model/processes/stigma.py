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

import numpy as np

from agents.states import Stage
from model.rates import F32, flush_tiny, prob


def step(m) -> None:
    p, pop, dt = m.params.stigma, m.population, m.dt_years
    s = pop.stigma
    a_conf = prob(p.conformity_rate, dt)
    a_norm = prob(p.norm_reversion_rate, dt)
    # Contact: 1 - exp(-contact_rate * k * dt) for k ties in recovery, looked up (k is a small integer).
    k = pop.recovery_ties.astype(np.intp)
    contact = prob(p.contact_rate * np.arange(int(k.max()) + 1, dtype=F32), dt)
    # s' = s + a_conf (perceived - s) + a_norm (norm (1 - campaign) - s) - contact s, in four passes
    s *= F32(1.0 - a_conf - a_norm) - contact[k]
    s += F32(a_conf) * pop.perceived_stigma
    s += F32(a_norm * (1.0 - p.campaign_strength)) * pop.stigma_norm
    np.clip(s, 0.0, 1.0, out=s)
    flush_tiny(s)

    user = pop.stage != Stage.NONE.value  # misuse, OUD, care or remission: an opioid-use history
    # 1 for an opioid-use history, mh_stigma_factor for a disorder alone (mh_stigma_factor <= 1), 0 else
    factor = np.maximum(user, F32(p.mh_stigma_factor) * pop.any_mh)
    if p.dual_stigma_factor != 1.0:
        factor *= F32(1.0) + F32(p.dual_stigma_factor - 1.0) * (user & pop.any_mh)
    target = np.minimum(pop.perceived_stigma * factor, F32(1.0))
    a_int = F32(prob(p.internalisation_rate, dt))
    x = pop.internal_stigma
    x *= F32(1.0) - a_int
    x += a_int * target
    flush_tiny(x)
