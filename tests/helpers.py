"""Helpers for tests that drive one process at a time on a crafted population."""

from __future__ import annotations

import math

import numpy as np

from oudsim.agents.states import Care, Stage
from oudsim.model import OUDModel


def bare_model(n: int = 20_000, rng: int = 1, **overrides) -> OUDModel:
    """A model with no burn-in, everyone free of opioid use and care, for single-process experiments."""
    m = OUDModel(population=n, rng=rng, burn_in_years=0, **overrides)
    pop = m.population
    pop.stage[:] = Stage.NONE
    pop.care[:] = Care.NONE
    pop.waiting[:] = False
    pop.craving[:] = 0.0
    return m


def expected_events(n: int, rate: float, dt_years: float) -> tuple[float, float]:
    """Mean and standard deviation of the number of events among n people in one step."""
    p = 1.0 - math.exp(-rate * dt_years)
    return n * p, math.sqrt(n * p * (1 - p))


def assert_count_matches(count: int, n: int, rate: float, dt_years: float, z: float = 4.5) -> None:
    mean, sd = expected_events(n, rate, dt_years)
    assert abs(count - mean) <= z * sd + 1, f"{count} events, expected {mean:.1f} ± {sd:.1f} (rate {rate}/yr)"


def two_proportion_z(k1: int, n1: int, k2: int, n2: int) -> float:
    p = (k1 + k2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2)) or 1e-12
    return (k1 / n1 - k2 / n2) / se


def rows(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask)
