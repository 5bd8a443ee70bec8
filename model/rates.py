"""Turning annual rates and hazard ratios into per-step probabilities."""

from __future__ import annotations

import numpy as np


def prob(rate, dt_years: float):
    """Probability of at least one event in a step: p = 1 - exp(-rate * dt)."""
    return -np.expm1(-np.asarray(rate, dtype=np.float32) * np.float32(dt_years))


def per_unit(hr: float, x: np.ndarray) -> np.ndarray:
    """A hazard ratio applied to a quantity x in [0, 1]: HR ** x (1 when HR = 1 or x = 0)."""
    if hr == 1.0:
        return np.ones_like(x, dtype=np.float32)
    return np.power(np.float32(hr), x, dtype=np.float32)


def when(mask: np.ndarray, hr: float) -> np.ndarray:
    """A hazard ratio applied where mask is true."""
    return np.where(mask, np.float32(hr), np.float32(1.0))


def table(values, index: np.ndarray) -> np.ndarray:
    """Look up a per-group parameter list (by ACE group, SES, age band) for each person."""
    return np.asarray(values, dtype=np.float32)[index]


def compete(u: np.ndarray, dt_years: float, *hazards: np.ndarray) -> np.ndarray:
    """Competing risks with one uniform draw each: returns 0 for no event, else 1 + which hazard.

    P(any) = 1 - exp(-sum h dt); the event is hazard j with probability h_j / sum h.
    """
    total = hazards[0].astype(np.float32, copy=True)
    for h in hazards[1:]:
        total += h
    p_any = prob(total, dt_years)
    out = np.zeros(u.shape, dtype=np.int8)
    hit = u < p_any
    if not hit.any():
        return out
    # position of u within [0, p_any) picks the hazard in proportion to its share
    frac = np.divide(u, p_any, out=np.zeros_like(u), where=hit) * total
    cum = np.zeros_like(total)
    for j, h in enumerate(hazards):
        cum = cum + h
        out[hit & (out == 0) & (frac < cum)] = j + 1
    out[hit & (out == 0)] = len(hazards)  # rounding at the top edge
    return out
