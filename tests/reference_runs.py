"""Three reference runs and a digest of everything they produce (frames, transition logs, the final
state of every random stream, every population array), so a change that must not alter the draws can
be checked bit for bit against digests kept from before it (tests/test_reference.py).

    python -m tests.reference_runs            # print the digests of the code as it is
    python -m tests.reference_runs --write    # keep them as the new reference (only for a change
                                              # that is meant to change the draws; say so in the commit)
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).with_name("reference_digests.json")

# (name, scenario, population, seed, steps, overrides): different seeds, sizes and scenarios; one
# with interventions ramping in mid-run, one with parameters set by alias.
RUNS = (
    ("baseline_3000_s1", "baseline", 3_000, 1, 104, {}),
    ("combined_5000_s7", "combined", 5_000, 7, 156, {}),
    ("high_isolation_2000_s42", "high_isolation", 2_000, 42, 104, {"capacity": 300.0, "burn_in_years": 5.0}),
)


def _hash(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:32]


def digest(model) -> dict[str, str]:
    """Digests of a model's frame (a column each: a metric added later is not a change to the others),
    transition log, streams and population arrays."""
    frame = model.datacollector.get_model_vars_dataframe()
    log = model.transitions.table[: len(model.transitions)]
    pop = model.population
    return {
        **{f"frame.{c}": _hash(frame[c].to_numpy(dtype=np.float64)) for c in frame.columns},
        "transitions": _hash(log),
        "streams": _hash(*(model.streams[k] for k in sorted(model.streams))),
        "population": _hash(*(getattr(pop, f.name) for f in fields(pop))),
        "ties": _hash(model.network.active),
    }


def run(name: str) -> dict[str, str]:
    from oudsim.scenarios import load_scenario

    _, scenario, population, seed, steps, overrides = next(r for r in RUNS if r[0] == name)
    m = load_scenario(scenario).build_model(population=population, rng=seed, **overrides)
    m.run_for(steps)
    return digest(m)


def main() -> None:
    out = {r[0]: run(r[0]) for r in RUNS}
    print(json.dumps(out, indent=2))
    if "--write" in sys.argv:
        REFERENCE.write_text(json.dumps(out, indent=2) + "\n")
        print(f"kept as {REFERENCE}")


if __name__ == "__main__":
    main()
