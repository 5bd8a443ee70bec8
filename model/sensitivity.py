"""Global sensitivity analysis with SALib: which parameters move a metric, ranked.

- **Morris** screening (default): ``r`` trajectories of ``k + 1`` runs each over a ``levels``-level
  grid; for each parameter, ``mu_star`` is the mean absolute elementary effect (how much the metric
  moves when the parameter crosses its range, in the metric's units, per unit of scaled range),
  ``sigma`` the spread of its effects (non-linearity and interactions).
- **Sobol** indices (on request): ``N * (k + 2)`` runs (Saltelli sampling); ``S1`` is the share
  of the metric's variance due to the parameter alone, ``ST`` including its interactions.

Parameters are dotted names. Bounds are either given (``name=lo:hi``) or default to
``default * (1 ± fraction)``, clipped to the schema range; a vector parameter (one value per group)
is moved as a whole by a scale factor in ``[1 - fraction, 1 + fraction]``. Integer parameters are
rounded.

Each sample point runs ``replicates`` replicates on the same seeds (common random numbers: points
differ by their parameters, not their luck), and its value is the mean over replicates of the
metric's mean over the final simulated year (as ``summary.csv``). The stochastic noise that remains
shows up as a floor under ``mu_star``; a parameter that cannot affect the metric gets exactly 0.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oudsim.model.calibration import (
    ODDS_RATIO,
    FreeParameter,
    executor,
    manifest,
    overrides_for,
    replicate_seeds,
    run_replicate,
)
from oudsim.model.metrics import METRIC_NAMES
from oudsim.model.parameters import ParameterError, Parameters, apply_overrides, field_info

__all__ = [
    "METHODS",
    "SensitivityResult",
    "bounds_for",
    "parse_parameter",
    "plot_ranking",
    "check_metric",
    "expand_groups",
    "MECHANISM_RATIOS",
    "run_sensitivity",
    "run_sensitivity_metrics",
]

METHODS = ("morris", "sobol")
Progress = Callable[[int, int], None]

# The hazard ratios and probabilities that carry the mechanisms (docs/evidence.md M1-M12 and the model
# v2 extensions), with assumed or evidence-based sizes rather than fitted ones: screened with the
# calibration's free parameters by default, so an analyst sees which assumed sizes matter.
MECHANISM_RATIOS: tuple[str, ...] = (
    "use.mh_hr",
    "use.impulsivity_hr",
    "use.dysregulation_hr",
    "use.risk_appraisal_hr",
    "use.peer_hr",
    "use.loneliness_hr",
    "use.craving_relapse_hr",
    "mental_health.loneliness_hr",
    "mental_health.craving_hr",
    "social.withdrawal_hr_mh",
    "social.withdrawal_hr_oud",
    "stigma.dual_stigma_factor",
    "treatment.perceived_stigma_hr",
    "treatment.internal_stigma_hr",
    "treatment.peer_recovery_hr",
    "treatment.mh_care_referral_hr",
    "treatment.overdose_referral",
    "overdose.treatment_hr",
    "overdose.lost_tolerance_hr",
    "overdose.tie_presence",
)
# Names that stand for a group on the command line.
GROUPS = {"free": "the calibration's free parameters", "mechanisms": "the mechanism ratios (MECHANISM_RATIOS)"}


def expand_groups(specs: list[str]) -> list[str]:
    """Parameter specs with the group names ``free`` and ``mechanisms`` written out (in order, once each)."""
    from oudsim.model.calibration import FREE_PARAMETERS

    out: list[str] = []
    for spec in specs:
        names = {"free": [p.name for p in FREE_PARAMETERS], "mechanisms": list(MECHANISM_RATIOS)}.get(spec, [spec])
        out.extend(n for n in names if n not in out)
    return out


def _schema_range(name: str) -> tuple[float, float]:
    rng = field_info(name).get("range") or [None, None]
    return (-math.inf if rng[0] is None else rng[0], math.inf if rng[1] is None else rng[1])


def bounds_for(name: str, fraction: float = 0.5) -> FreeParameter:
    """Default bounds: default * (1 ± fraction), clipped to the schema range (vectors: a factor)."""
    if not 0 < fraction < 1:
        raise ParameterError(f"fraction must lie in (0, 1), not {fraction}")
    info = field_info(name)  # unknown names: ParameterError with a suggestion
    default = info["default"]
    s_lo, s_hi = _schema_range(name)
    if isinstance(default, list):
        f_lo, f_hi = 1.0 - fraction, 1.0 + fraction
        for x in default:
            if x > 0:
                f_lo = max(f_lo, s_lo / x)
                f_hi = min(f_hi, s_hi / x)
        lo, hi = f_lo, f_hi
    elif isinstance(default, int | float) and not isinstance(default, bool):
        if default == 0:
            raise ParameterError(
                f"'{name}' defaults to 0, so ± a fraction of it is no range: give bounds as {name}=lo:hi"
            )
        a, b = sorted((default * (1 - fraction), default * (1 + fraction)))
        if isinstance(default, int):  # widen to whole numbers (values are rounded when run)
            a, b = math.floor(a), math.ceil(b)
        lo, hi = max(a, s_lo), min(b, s_hi)
    else:
        raise ParameterError(f"'{name}' is not numeric, so it cannot be varied")
    if not lo < hi:
        raise ParameterError(f"'{name}': no room to vary it inside its allowed range")
    return FreeParameter(name, float(lo), float(hi))


def parse_parameter(spec: str, fraction: float = 0.5) -> FreeParameter:
    """``name`` (default bounds) or ``name=lo:hi`` (explicit; for a vector, a scale factor)."""
    name, eq, rng = spec.partition("=")
    name = name.strip()
    if not eq:
        return bounds_for(name, fraction)
    field_info(name)
    lo, colon, hi = rng.partition(":")
    try:
        p = FreeParameter(name, float(lo), float(hi))
    except ValueError:
        raise ParameterError(f"'{spec}': expected name=lo:hi with numbers") from None
    if not colon:
        raise ParameterError(f"'{spec}': expected name=lo:hi")
    p.check()
    return p


@dataclass
class SensitivityResult:
    metric: str
    method: str
    indices: pd.DataFrame  # one row per parameter, ranked (rank 1 = most influential)
    samples: pd.DataFrame  # every sample point and its metric value
    settings: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def ranking(self) -> list[str]:
        return list(self.indices["parameter"])

    def format(self) -> str:
        key = "mu_star" if self.method == "morris" else "ST"
        lines = [f"{self.method} sensitivity of {self.metric} (ranked by {key}):"]
        for r in self.indices.itertuples(index=False):
            conf = getattr(r, f"{key}_conf")
            lines.append(f"{r.rank:3d}. {r.parameter:40s} {key} = {getattr(r, key):.4g} ± {conf:.2g}")
        return "\n".join(lines)


def run_sensitivity(
    parameters: Sequence[str | FreeParameter],
    metric: str = "oud_prevalence",
    **kwargs: Any,
) -> SensitivityResult:
    """Sample the parameters, run the model at every point, compute and rank the indices for one
    metric (keywords: see ``run_sensitivity_metrics``)."""
    return run_sensitivity_metrics(parameters, [metric], **kwargs)[metric]


def check_metric(metric: str) -> str:
    if metric not in METRIC_NAMES and metric != ODDS_RATIO:
        import difflib

        close = difflib.get_close_matches(metric, [*METRIC_NAMES, ODDS_RATIO], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ParameterError(f"unknown metric '{metric}'{hint}")
    return metric


def run_sensitivity_metrics(
    parameters: Sequence[str | FreeParameter],
    metrics: Sequence[str] = ("oud_prevalence",),
    *,
    method: str = "morris",
    base: Parameters | None = None,
    trajectories: int = 8,
    levels: int = 4,
    sobol_n: int = 64,
    fraction: float = 0.5,
    population: int = 5_000,
    years: float = 5.0,
    average_years: float = 1.0,
    burn_in_years: float | None = None,
    replicates: int = 1,
    seed: int = 1,
    workers: int = 1,
    out: str | Path | None = None,
    progress: Progress | None = None,
    scheduler: Any = None,
) -> dict[str, SensitivityResult]:
    """One sample design run once; the indices of every metric in ``metrics`` from those runs.

    Each point's value is the mean over ``replicates`` (common seeds) of the metric's mean over the
    final ``average_years`` (default 1: the final year, as summary.csv). With ``out``, writes per
    metric ``sensitivity_<metric>_<method>.csv`` (indices), ``..._samples.csv`` (the points and
    values) and ``..._ranking.png`` (a ranked bar plot).
    """
    if method not in METHODS:
        raise ParameterError(f"method must be one of {', '.join(METHODS)}, not '{method}'")
    metrics = [check_metric(m) for m in dict.fromkeys(metrics)]
    if not metrics:
        raise ParameterError("no metric given")
    free = [p if isinstance(p, FreeParameter) else parse_parameter(p, fraction) for p in parameters]
    names = [p.name for p in free]
    if len(free) < 2:
        raise ParameterError("sensitivity analysis needs at least two parameters")
    if len(set(names)) != len(names):
        raise ParameterError(f"parameters repeat a name: {names}")
    if trajectories < 2 or levels < 2 or replicates < 1 or years <= 0 or sobol_n < 2:
        raise ParameterError("trajectories >= 2, levels >= 2, sobol_n >= 2, replicates >= 1 and years > 0 are required")
    if average_years <= 0:
        raise ParameterError(f"average_years must be positive, not {average_years:g}")
    average_years = min(average_years, years)  # a run shorter than the window: all of it
    fixed: dict[str, Any] = {"simulation.population": population}
    if burn_in_years is not None:
        fixed["simulation.burn_in_years"] = burn_in_years
    base = apply_overrides(base if base is not None else Parameters(), fixed)
    problem = {"num_vars": len(free), "names": names, "bounds": [[p.lo, p.hi] for p in free]}

    if method == "morris":
        from SALib.sample import morris as sampler

        X = sampler.sample(problem, N=trajectories, num_levels=levels, seed=seed)
    else:
        from SALib.sample import sobol as sampler

        X = sampler.sample(problem, N=sobol_n, calc_second_order=False, seed=seed)

    # Every point's overrides are checked before anything runs.
    points = [apply_overrides(base, overrides_for(dict(zip(names, x, strict=True)))) for x in X]
    seeds = replicate_seeds(seed, replicates)
    total = len(points) * replicates
    values = np.zeros((len(metrics), len(points), replicates))
    with executor(workers, scheduler) as pool:
        futures = {
            pool.submit(run_replicate, params, s, years, average_years): (i, j)
            for i, params in enumerate(points)
            for j, s in enumerate(seeds)
        }
        for n, fut in enumerate(cf.as_completed(futures), start=1):
            i, j = futures[fut]
            row = fut.result()
            values[:, i, j] = [row[m] for m in metrics]
            if progress is not None:
                progress(n, total)

    settings = dict(
        method=method,
        trajectories=trajectories,
        levels=levels,
        sobol_n=sobol_n,
        fraction=fraction,
        population=population,
        years=years,
        average_years=average_years,
        burn_in_years=base.simulation.burn_in_years,
        replicates=replicates,
        seed=seed,
        runs=total,
    )
    results = {}
    for k, metric in enumerate(metrics):
        Y = values[k].mean(axis=1)
        indices = _analyse(method, problem, free, X, Y, levels, seed)
        indices.insert(1, "metric", metric)
        samples = pd.DataFrame(X, columns=names)
        samples[metric] = Y
        result = SensitivityResult(metric, method, indices, samples, {**settings, "metric": metric})
        if out is not None:
            result.paths = write_outputs(result, out)
        results[metric] = result
    return results


def _analyse(
    method: str, problem: dict, free: list[FreeParameter], X: np.ndarray, Y: np.ndarray, levels: int, seed: int
) -> pd.DataFrame:
    names = [p.name for p in free]
    head = {
        "parameter": names,
        "lo": [p.lo for p in free],
        "hi": [p.hi for p in free],
        "scale_factor": [p.is_vector for p in free],
    }
    if method == "morris":
        from SALib.analyze import morris as analyzer

        res = analyzer.analyze(problem, X, Y, num_levels=levels, conf_level=0.95, seed=seed)
        keys, key = ("mu_star", "mu_star_conf", "mu", "sigma"), "mu_star"
    else:
        from SALib.analyze import sobol as analyzer

        with np.errstate(divide="ignore", invalid="ignore"):
            res = analyzer.analyze(problem, Y, calc_second_order=False, conf_level=0.95, seed=seed)
        keys, key = ("ST", "ST_conf", "S1", "S1_conf"), "ST"
    indices = pd.DataFrame({**head, **{k: np.asarray(res[k], dtype=float) for k in keys}})
    indices = indices.sort_values(key, ascending=False, kind="stable").reset_index(drop=True)
    indices.insert(0, "rank", np.arange(1, len(indices) + 1))
    return indices


def write_outputs(result: SensitivityResult, out: str | Path) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"sensitivity_{result.metric}_{result.method}"
    paths = {
        "indices": out / f"{stem}.csv",
        "samples": out / f"{stem}_samples.csv",
        "plot": out / f"{stem}_ranking.png",
        "manifest": out / f"{stem}_manifest.json",
    }
    result.indices.to_csv(paths["indices"], index=False)
    result.samples.to_csv(paths["samples"], index=False)
    plot_ranking(result, paths["plot"])
    about = manifest(result.settings, metric=result.metric, method=result.method)
    paths["manifest"].write_text(json.dumps(about, indent=2, default=str) + "\n")
    return paths


def plot_ranking(result: SensitivityResult, path: str | Path) -> Path:
    """A horizontal bar chart, most influential at the top, with 95% confidence whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from oudsim.model.metrics import BY_NAME

    df = result.indices.iloc[::-1]
    morris = result.method == "morris"
    key = "mu_star" if morris else "ST"
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(df) + 1.6), dpi=120)
    labels = [f"{p} (×)" if v else p for p, v in zip(df["parameter"], df["scale_factor"], strict=True)]
    ax.barh(labels, df[key], xerr=df[f"{key}_conf"], color="#3b6ea5", capsize=3)
    if not morris:
        ax.barh(labels, df["S1"], height=0.35, color="#e0a030", label="S1 (alone)")
        ax.legend(loc="lower right", fontsize=8)
    m = BY_NAME.get(result.metric)
    unit = f" ({m.unit})" if m is not None else ""
    xlabel = (
        f"μ* — mean |elementary effect| on {result.metric}{unit}"
        if morris
        else f"total-order Sobol index S_T of {result.metric}"
    )
    ax.set_xlabel(xlabel, fontsize=9)
    s = result.settings
    ax.set_title(
        f"{'Morris' if morris else 'Sobol'} ranking: {result.metric}\n"
        f"{s.get('population')} people, {s.get('years')} y after "
        f"{s.get('burn_in_years')} y burn-in, {s.get('runs')} runs",
        fontsize=10,
    )
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlim(left=0)
    if any(df["scale_factor"]):
        fig.text(0.01, 0.01, "(×): a vector parameter, scaled as a whole", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
