"""Refactors that must not change the model leave every draw where it was: three reference runs
(different seeds, sizes and scenarios) give frames, transition logs, stream states, population arrays
and ties bit-identical to the digests kept in tests/reference_digests.json (tests/reference_runs.py).

A change meant to alter the draws regenerates the digests (``python -m tests.reference_runs --write``)
and says so in its commit."""

from __future__ import annotations

import json

import pytest

from tests.reference_runs import REFERENCE, RUNS, run

KEPT = json.loads(REFERENCE.read_text())


@pytest.mark.parametrize("name", [r[0] for r in RUNS])
def test_reference_run_is_bit_identical(name):
    """Everything kept is as it was; a metric added since (a new frame column) is not a change."""
    got = run(name)
    changed = [k for k in KEPT[name] if got.get(k) != KEPT[name][k]]
    assert not changed, f"{name}: {', '.join(changed)} differ from the kept digests (or are gone)"
