"""4. Stigma: attitudes spread through ties, contact lowers them, campaigns lower them from outside.

Attitude s_i in [0, 1] (1 = most stigmatising) moves each step by
    prob(conformity) * (mean attitude of ties - s_i)
  + prob(norm_reversion) * (norm_i * (1 - campaign_strength) - s_i)
  - prob(contact_rate * ties in treatment or remission) * s_i
Internalised stigma of a person with a condition follows the stigma they perceive among their ties:
target = perceived * (1 for opioid use, mh_stigma_factor for a disorder alone) * dual_stigma_factor^(both),
capped at 1, approached at ``internalisation_rate``; without a condition it fades at the same rate.
"""

from __future__ import annotations

import numpy as np

from agents.states import Stage
from model.rates import prob, when


def step(m) -> None:
    p, pop, dt = m.params.stigma, m.population, m.dt_years
    s = pop.stigma
    norm = pop.stigma_norm * np.float32(1.0 - p.campaign_strength)
    delta = prob(p.conformity_rate, dt) * (pop.perceived_stigma - s)
    delta += prob(p.norm_reversion_rate, dt) * (norm - s)
    delta -= prob(p.contact_rate * pop.recovery_ties, dt) * s
    np.clip(s + delta, 0.0, 1.0, out=s)

    user = pop.stage != Stage.NONE  # misuse, OUD, care or remission: an opioid-use history
    any_mh = pop.any_mh
    factor = np.where(user, np.float32(1.0), np.where(any_mh, np.float32(p.mh_stigma_factor), np.float32(0.0)))
    factor *= when(user & any_mh, p.dual_stigma_factor)
    target = np.minimum(pop.perceived_stigma * factor, 1.0)
    pop.internal_stigma += (target - pop.internal_stigma) * prob(p.internalisation_rate, dt)
