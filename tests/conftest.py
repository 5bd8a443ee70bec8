"""Shared fixtures. Keep populations small: CI runs the whole suite on two cores."""

from __future__ import annotations

import os

import pytest

# pytest-xdist workers run with COLUMNS=80, which makes Rich fold the CLI's tables; tests read them whole.
os.environ["COLUMNS"] = "200"

from oudsim.model import OUDModel


@pytest.fixture(scope="session")
def small_model() -> OUDModel:
    """A 2,000-person model after a short burn-in (read-only: tests must not step it)."""
    return OUDModel(population=2_000, rng=7, burn_in_years=2)
