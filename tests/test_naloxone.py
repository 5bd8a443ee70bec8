"""Naloxone carried by people (model.processes.naloxone) and used by whoever is there (overdose)."""

from __future__ import annotations

import numpy as np

from oudsim.agents.states import Stage
from oudsim.model.processes import naloxone, overdose
from tests.helpers import bare_model

N = 20_000


def test_kits_settle_at_the_coverage_among_people_who_use_and_less_among_their_ties():
    m = bare_model(
        N, **{"overdose.naloxone_coverage": 0.4, "overdose.kit_tie_share": 0.5, "overdose.kit_loss_rate": 2.0}
    )
    pop = m.population
    users = np.arange(N) % 4 == 0
    pop.stage[users] = Stage.MISUSE
    pop.using_ties[:] = 0
    ties = np.arange(N) % 4 == 1
    pop.using_ties[ties] = 1  # a tie who uses, not using themselves
    for _ in range(156):  # three years: kits turn over at 2 a year
        naloxone.step(m)
    rate = naloxone.kit_rate(0.4, 2.0)
    assert abs(pop.naloxone[users].mean() - 0.4) < 0.03
    tie_share = 0.5 * rate / (0.5 * rate + 2.0)
    assert abs(pop.naloxone[ties].mean() - tie_share) < 0.03
    assert pop.naloxone[~users & ~ties].sum() == 0  # distribution reaches no one else


def _one_overdose_step(witness_kits: bool, own_kits: bool, seed: int = 3):
    """One in ten people use (their ties are mostly people who do not); one overdose step at a high rate."""
    m = bare_model(
        N,
        rng=seed,
        **{
            "overdose.rate_oud": 10.0,
            "overdose.fatality": 0.5,
            "overdose.tie_presence": 1.0,
            "overdose.alone_stigma": 0.0,
            "overdose.naloxone_efficacy": 1.0,
            "overdose.witnessed_fatality_factor": 1.0,
        },
    )
    pop = m.population
    users = np.arange(N) % 10 == 0
    pop.stage[users] = Stage.OUD
    pop.naloxone[~users] = witness_kits
    pop.naloxone[users] = own_kits
    m.week += 1
    overdose.step(m)
    return m


def test_a_kit_at_hand_is_the_witness_s_or_the_person_s_own_and_is_used_up():
    none = _one_overdose_step(False, False)
    assert none.flows["overdose_deaths"] > 0.4 * none.flows["overdoses"] > 40  # fatality 0.5, no kit
    # Someone is always there (tie_presence 1, no hiding) and efficacy is 1: a kit at hand reverses every overdose.
    # Only a person whose own kit went to reverse another's overdose earlier in the step can die.
    own = _one_overdose_step(False, True)
    assert own.flows["overdose_deaths"] <= 0.02 * own.flows["overdoses"]
    overdosed = own.population.last_overdose == own.week
    assert own.population.naloxone[overdosed].mean() < 0.05  # the kit was used up
    witness = _one_overdose_step(True, False)
    assert witness.flows["overdose_deaths"] <= 0.02 * witness.flows["overdoses"]
    assert witness.population.naloxone[overdosed].sum() == 0  # the users carried none


def test_with_no_ties_no_one_is_there():
    m = bare_model(2_000, **{"overdose.rate_oud": 10.0, "overdose.tie_presence": 1.0, "overdose.alone_stigma": 0.0})
    net = m.network
    net.set_active(np.flatnonzero(net.active), False)
    m.population.stage[:] = Stage.OUD
    m.population.naloxone[:] = True
    m.week += 1
    overdose.step(m)
    assert m.flows["overdoses"] > 0 and m.flows["alone_overdoses"] == m.flows["overdoses"]
