"""Parameter uncertainty: a sample of accepted parameter sets, and the file that carries it.

The calibration's free parameters (model.calibration.FREE_PARAMETERS) have priors: uniform over
their search ranges, on the log scale where the range is marked ``log`` (their sources are in the
parameter tree and in ``FreeParameter.why``). A parameter set is *accepted* when the model's mean over
the replicates falls inside every calibration target's band (the published ranges of
docs/evidence.md). The accepted sets are sampled by ABC-MCMC (Marjoram et al., PNAS 2003):

    start at a set that is accepted (the fitted values);
    propose x' = x + step * N(0, I) in the unit cube of the priors (reflected at its faces);
    move to x' if x' is accepted, else stay at x; record x.

With uniform priors and a symmetric proposal the chain's states are a sample of the ABC posterior
(the prior restricted to the accepted region). Why not the alternatives: drawing from the priors and
keeping the accepted ones accepts none in practice (of 18 Sobol draws over the 14 priors, none put all
15 targets inside their bands; 5 to 11 were inside), and pyabc's ABC-SMC would need thousands of
runs to shrink its tolerance down to the bands; Optuna's TPE finds the region (``oudsim calibrate``)
but its trials are not a sample of anything. The chain is resumable: every step is written as it is
made, and step k's proposal is drawn from a generator seeded by (seed, k).

A posterior file is Parquet: one row per draw (the chain's states), a column per free parameter (a
vector parameter as its scale factor), and in the file's metadata the oudsim version and the
parameter schema it was made with. A file from another version or schema is refused.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oudsim.model.parameters import ParameterError, Parameters

METADATA_KEY = b"oudsim_posterior"
FORMAT = 1
SHUFFLE_SEED = 0  # the order in which runs take a file's draws (fixed: a file gives the same runs)
DEFAULT_STEP = 0.05  # proposal SD in the unit cube: ~5% of a prior's range per step


class PosteriorError(ParameterError):
    """A posterior file that cannot be used here; the message names the file and why."""


def schema_fingerprint() -> str:
    """What a posterior's values mean: the parameter tree's schema (names, ranges, defaults)."""
    text = json.dumps(Parameters.model_json_schema(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_version() -> str:
    from oudsim.model.experiments import package_version

    return package_version()


@dataclass
class Posterior:
    """Accepted parameter sets: ``draws`` has a column per free parameter (values as in
    model.calibration: a vector parameter as a scale factor of its default)."""

    draws: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def names(self) -> list[str]:
        return [c for c in self.draws.columns if c not in ("draw", "step", "accepted", "loss")]

    def __len__(self) -> int:
        return len(self.draws)

    @functools.cached_property
    def _order(self) -> np.ndarray:
        return np.random.default_rng(SHUFFLE_SEED).permutation(len(self.draws))

    def values(self, i: int) -> dict[str, float]:
        """Draw ``i`` as free-parameter values: the row at place ``i`` (cycling) of a fixed shuffle of
        the rows, so any first k draws spread over the whole chain rather than its first k states."""
        row = self.draws.iloc[self._order[i % len(self.draws)]]
        return {name: float(row[name]) for name in self.names}

    def overrides(self, i: int) -> dict[str, Any]:
        """Draw ``i`` as dotted-name overrides of the parameter tree."""
        from oudsim.model.calibration import overrides_for

        return overrides_for(self.values(i))

    def save(self, path: str | Path) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from oudsim.model.results_folder import atomic_write

        path = Path(path)
        meta = {**self.meta, "format": FORMAT, "oudsim_version": model_version(), "schema": schema_fingerprint()}
        table = pa.Table.from_pandas(self.draws, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), METADATA_KEY: json.dumps(meta)})
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: pq.write_table(table, tmp))
        self.meta, self.path = meta, path
        return path


def load(path: str | Path) -> Posterior:
    """Read and check a posterior file: this version's schema, known free parameters, values in their priors."""
    import pyarrow.parquet as pq

    from oudsim.model.calibration import FREE_PARAMETERS

    path = Path(path)
    if not path.is_file():
        raise PosteriorError(f"{path}: no such posterior file")
    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise PosteriorError(f"{path}: not a posterior file (Parquet could not read it: {type(e).__name__})") from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise PosteriorError(f"{path}: not a posterior file of oudsim (no oudsim_posterior metadata)")
    meta = json.loads(raw)
    if meta.get("schema") != schema_fingerprint() or meta.get("oudsim_version") != model_version():
        raise PosteriorError(
            f"{path}: made by oudsim {meta.get('oudsim_version')} with parameter schema {meta.get('schema')}; "
            f"this is oudsim {model_version()} with schema {schema_fingerprint()}. Its values may not mean the "
            "same here: sample a new posterior (oudsim calibrate --posterior N)."
        )
    draws = table.to_pandas()
    post = Posterior(draws, meta, path)
    priors = {p.name: p for p in FREE_PARAMETERS}
    for name in post.names:
        if name not in priors:
            raise PosteriorError(f"{path}: column '{name}' is not a free parameter of this model")
        v = draws[name].to_numpy(dtype=float)
        p = priors[name]
        if not np.all(np.isfinite(v)) or v.min() < p.lo * (1 - 1e-9) or v.max() > p.hi * (1 + 1e-9):
            raise PosteriorError(f"{path}: '{name}' has values outside its prior [{p.lo:g}, {p.hi:g}]")
    if len(draws) == 0 or not post.names:
        raise PosteriorError(f"{path}: no draws")
    return post


# -- the sampler ----------------------------------------------------------------------------------


def to_unit(p: Any, value: float) -> float:
    """A free parameter's value as its place in the prior's unit interval."""
    if p.log:
        return (math.log(value) - math.log(p.lo)) / (math.log(p.hi) - math.log(p.lo))
    return (value - p.lo) / (p.hi - p.lo)


def from_unit(p: Any, u: float) -> float:
    if p.log:
        return float(math.exp(math.log(p.lo) + u * (math.log(p.hi) - math.log(p.lo))))
    return float(p.lo + u * (p.hi - p.lo))


def reflect(u: np.ndarray) -> np.ndarray:
    """Fold a proposal back into [0, 1] (a reflected random walk stays symmetric)."""
    u = np.mod(u, 2.0)
    return np.where(u > 1.0, 2.0 - u, u)


Judge = Callable[[dict[str, float]], tuple[bool, float]]  # values -> (accepted, loss)


def abc_mcmc(
    free: Sequence[Any],
    start: dict[str, float],
    judge: Judge,
    *,
    steps: int,
    seed: int,
    step: float = DEFAULT_STEP,
    chain: pd.DataFrame | None = None,
    on_step: Callable[[pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """Run (or continue) the chain to ``steps`` states; one row per state: step, the values, whether
    the proposal made at that step was accepted, and its loss."""
    names = [p.name for p in free]
    rows = [] if chain is None else chain.to_dict("records")
    if rows:
        x = np.array([to_unit(p, rows[-1][p.name]) for p in free])
    else:
        ok, value = judge(start)
        if not ok:
            raise ParameterError(
                "the starting values are not accepted (some target is outside its band): calibrate first "
                "(oudsim calibrate), then sample from the fitted values"
            )
        x = np.array([to_unit(p, start[p.name]) for p in free])
        rows.append({"step": 0, **{n: start[n] for n in names}, "accepted": True, "loss": value})
        if on_step is not None:
            on_step(pd.DataFrame(rows))
    while len(rows) < steps:
        k = len(rows)
        rng = np.random.default_rng([seed, k])
        proposal = reflect(x + step * rng.standard_normal(x.size))
        values = {p.name: from_unit(p, u) for p, u in zip(free, proposal, strict=True)}
        ok, value = judge(values)
        if ok:
            x = proposal
        current = {p.name: from_unit(p, u) for p, u in zip(free, x, strict=True)}
        rows.append({"step": k, **current, "accepted": bool(ok), "loss": value})
        if on_step is not None:
            on_step(pd.DataFrame(rows))
    return pd.DataFrame(rows)
