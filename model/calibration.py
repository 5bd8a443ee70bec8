"""Calibration: fit the uncertain parameters so the baseline reproduces published figures.

What is fitted and what it is fitted to are data in this module:

- ``TARGETS``: the calibration targets of ``docs/evidence.md`` ("Calibration targets"): metric, point
  target, band, evidence rows (E<n>).
- ``FREE_PARAMETERS``: the uncertain parameters the fit may move (dotted names with search ranges
  inside their schema ranges). A vector parameter (one rate per disorder) is moved as a whole by one
  scale factor, so the shape the evidence gives it is kept.

How a parameter set is scored:

1. ``evaluate`` runs ``replicates`` independent replicates (replicate i gets child i of
   ``SeedSequence(seed)``, the same seeds as ``oudsim run``), each burned in for
   ``simulation.burn_in_years`` and then recorded for ``years`` years.
2. Each replicate gives each catalogue metric's mean over its **final simulated year** (as
   ``summary.csv`` does), and the ACE 4+ vs 0 odds ratio of OUD on its final state
   (``model.metrics.odds_ratio``).
3. ``summarise`` gives per target the mean across replicates, the 2.5th–97.5th percentile interval
   across replicates, and whether the mean is inside the band.
4. ``loss``: for each target, ten times the distance of the mean outside its band divided by the
   band width (zero inside the band), plus ``pull`` times the squared distance from the point
   target, also in band widths (a small pull toward the centre, which leaves room for the noise of
   other populations and seeds). Targets marked ``log`` (the odds ratio) are measured on the log scale.

No target enters the dynamics: the model only sees parameters; targets are read off its output.
``calibrate`` runs a seeded Optuna TPE study over the free parameters (the current values are the
first trial), and ``write_parameter_file`` writes the fitted values as a TOML parameter file that
``Parameters.from_file`` (and ``oudsim run --params``-style loaders) read.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oudsim.model.metrics import METRIC_NAMES, odds_ratio
from oudsim.model.parameters import (
    ParameterError,
    Parameters,
    apply_overrides,
    field_info,
    get_dotted,
)

__all__ = [
    "FREE_PARAMETERS",
    "TARGETS",
    "CalibrationResult",
    "FreeParameter",
    "Target",
    "calibrate",
    "changed_values",
    "evaluate",
    "format_table",
    "format_value",
    "free_parameter",
    "loss",
    "overrides_for",
    "run_replicate",
    "summarise",
    "write_outputs",
    "write_parameter_file",
]

ODDS_RATIO = "ace_odds_ratio"  # not a catalogue metric: computed on each replicate's final state
Progress = Callable[[int, int], None]


# -- targets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    metric: str
    target: float | None  # point target (None: a band only)
    lo: float
    hi: float
    source: str  # rows of docs/evidence.md (E<n>)
    label: str
    log: bool = False  # measure distances on the log scale (ratios)

    def _scale(self, x: float) -> float:
        return math.log(x) if self.log else x

    @property
    def width(self) -> float:
        return self._scale(self.hi) - self._scale(self.lo)

    def inside(self, value: float) -> bool:
        return bool(self.lo <= value <= self.hi)

    def outside_distance(self, value: float) -> float:
        """How far value lies outside the band, in band widths (0 inside)."""
        if not np.isfinite(value) or value <= 0 and self.log:
            return 10.0
        v, lo, hi = self._scale(value), self._scale(self.lo), self._scale(self.hi)
        return max(lo - v, v - hi, 0.0) / self.width

    def centre_distance(self, value: float) -> float:
        """Signed distance from the point target, in band widths (0 without a point target)."""
        if self.target is None or not np.isfinite(value) or (self.log and value <= 0):
            return 0.0
        return (self._scale(value) - self._scale(self.target)) / self.width


TARGETS: tuple[Target, ...] = (
    Target("oud_prevalence", 0.022, 0.015, 0.030, "E1, E2", "Past-year OUD prevalence"),
    Target("misuse_prevalence", 0.032, 0.025, 0.045, "E3", "Opioid misuse (misuse or OUD)"),
    Target("mh_prevalence", 0.23, 0.18, 0.28, "E4, E5", "Any mental illness (the four categories)"),
    Target("cooccurring_share", 0.643, 0.55, 0.72, "E6", "People with OUD who have a disorder"),
    Target("treatment_coverage", 0.251, 0.18, 0.32, "E14", "People with OUD on medication"),
    Target(
        "oud_death_rate",
        20.9,
        10.0,
        40.0,
        "E21, E26",
        "Deaths among people with OUD per 1,000 person-years",
    ),
    Target(ODDS_RATIO, None, 3.0, 12.0, "E11", "Odds ratio of OUD, 4+ vs 0 ACEs", log=True),
    # Not in docs/evidence.md's target table; E24 is a (T) row: 81,806 opioid deaths in 2022 and about
    # 54,700 in 2024 among ~260 M US adults = 31 and 21 per 100,000 adults a year.
    Target("overdose_death_rate", 25.0, 15.0, 35.0, "E24 (secondary)", "Overdose deaths per 100,000 adults a year"),
    # The v2 targets: a cross-sectional level (E7, E13) or a rate read off the transition log over the
    # recorded years (log_measures). Bands: E7 +-30% of the point; E13 the 2018 and 2020 surveys; E15 +-10
    # points; E16, E21 and E25 their published ranges.
    Target("depression_among_oud", 0.308, 0.22, 0.40, "E7", "People with OUD who have depression"),
    Target("lonely_share", 0.54, 0.45, 0.62, "E13", "Lonely adults (UCLA 43+)"),
    Target("retention_180d", 0.494, 0.40, 0.60, "E15", "Still in OUD care 180 days after admission"),
    Target("relapse_after_care_26w", 0.68, 0.59, 0.77, "E16", "Relapse within 26 weeks of leaving care in remission"),
    Target("natural_remission_rate", 0.158, 0.092, 0.224, "E25", "Remission from untreated OUD without care, per year"),
    Target(
        "out_of_care_mortality_ratio", 2.7, 2.2, 3.2, "E21", "All-cause deaths with OUD, out of care vs in it", log=True
    ),
    Target("witnessed_overdose_death_share", 0.37, 0.25, 0.49, "E27", "Overdose deaths with someone present"),
)
LOG_MEASURES = ("relapse_after_care_26w", "natural_remission_rate", "out_of_care_mortality_ratio")
TARGETS_BY_METRIC = {t.metric: t for t in TARGETS}


# -- free parameters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FreeParameter:
    """A parameter the fit may move, within [lo, hi].

    For a scalar, lo and hi bound its value. For a vector (``mental_health.onset_rate``), lo and hi
    bound a factor that scales the base vector as a whole, so its shape is kept.
    """

    name: str
    lo: float
    hi: float
    log: bool = False
    why: str = ""

    @property
    def is_vector(self) -> bool:
        return isinstance(field_info(self.name)["default"], list)

    def check(self) -> None:
        """Refuse a search range that leaves the schema range (for a vector: any scaled item)."""
        info = field_info(self.name)  # raises ParameterError for an unknown name
        if not (self.lo < self.hi):
            raise ParameterError(f"free parameter '{self.name}': lo {self.lo} must be below hi {self.hi}")
        if self.log and self.lo <= 0:
            raise ParameterError(f"free parameter '{self.name}': a log-scale range needs lo > 0")
        rng = info.get("range") or [None, None]
        s_lo = -math.inf if rng[0] is None else rng[0]
        s_hi = math.inf if rng[1] is None else rng[1]
        default = info["default"]
        if isinstance(default, list):
            items = [x * f for x in default for f in (self.lo, self.hi)]
        elif isinstance(default, int | float) and not isinstance(default, bool):
            items = [self.lo, self.hi]
        else:
            raise ParameterError(f"free parameter '{self.name}' is not numeric")
        bad = [x for x in items if not (s_lo <= x <= s_hi)]
        if bad:
            raise ParameterError(
                f"free parameter '{self.name}': search range [{self.lo:g}, {self.hi:g}] leaves the "
                f"allowed range [{s_lo:g}, {s_hi:g}]"
            )

    def value_in(self, params: Parameters) -> float:
        """The parameter's value in params (for a vector: its scale relative to the default)."""
        v = get_dotted(params, self.name)
        if isinstance(v, list):
            default = field_info(self.name)["default"]
            ratios = [a / b for a, b in zip(v, default, strict=True) if b]
            return float(np.mean(ratios)) if ratios else 1.0
        return float(v)


FREE_PARAMETERS: tuple[FreeParameter, ...] = (
    FreeParameter("use.initiation_rate", 0.0006, 0.003, log=True, why="misuse, OUD (E3, E1)"),
    FreeParameter("use.progression_rate", 0.05, 0.4, log=True, why="OUD (E1)"),
    FreeParameter("use.natural_remission_rate", 0.092, 0.224, why="OUD; the range of E25"),
    FreeParameter("treatment.seek_rate", 1.0, 4.0, log=True, why="coverage (E14)"),
    # Kept low enough that slots bind (a waitlist forms): coverage is then limited by capacity as
    # well as by seeking, so expanding capacity can matter (an assumption; see docs/calibration.md).
    FreeParameter("treatment.capacity_per_100k", 450.0, 800.0, why="coverage (E14); binding"),
    FreeParameter("mental_health.onset_rate", 0.8, 1.2, why="disorders (E4, E5); a scale factor"),
    FreeParameter("mental_health.oud_hr", 1.0, 2.5, why="co-occurrence (E6)"),
    FreeParameter("overdose.rate_oud", 0.06, 0.3, log=True, why="deaths (E21, E24, E26)"),
    FreeParameter("demography.oud_mortality_hr", 1.0, 4.0, why="deaths with OUD (E26)"),
    FreeParameter("demography.care_mortality_hr", 0.1, 1.0, why="deaths in vs out of care (E21)"),
    FreeParameter("social.supportive_ties_full", 14.0, 16.0, why="lonely share (E13)"),
    FreeParameter("treatment.dropout_rate", 0.4, 1.2, why="retention at 180 days (E15)"),
    FreeParameter("use.early_relapse_after_care", 0.6, 3.0, why="relapse after leaving care (E16)"),
    FreeParameter("overdose.tie_presence", 0.05, 0.4, why="overdose deaths with someone present (E27)"),
)


def free_parameter(spec: str) -> FreeParameter:
    """A free parameter from ``name`` (a declared one) or ``name=lo:hi`` (a custom range)."""
    name, eq, rng = spec.partition("=")
    name = name.strip()
    declared = {p.name: p for p in FREE_PARAMETERS}
    if not eq:
        if name in declared:
            return declared[name]
        field_info(name)  # unknown names get the schema's "did you mean" message
        raise ParameterError(
            f"'{name}' is not a declared free parameter; give a range as {name}=lo:hi (declared: {', '.join(declared)})"
        )
    lo, colon, hi = rng.partition(":")
    try:
        lo_f, hi_f = float(lo), float(hi)
    except ValueError:
        raise ParameterError(f"'{spec}': expected name=lo:hi with numbers, e.g. use.relapse_rate=0.01:0.05") from None
    if not colon:
        raise ParameterError(f"'{spec}': expected name=lo:hi")
    base = declared.get(name)
    p = FreeParameter(name, lo_f, hi_f, log=bool(base and base.log and lo_f > 0))
    p.check()
    return p


def overrides_for(values: dict[str, float], base: Parameters | None = None) -> dict[str, Any]:
    """Dotted-name overrides for free-parameter values (vectors scale the schema default)."""
    out: dict[str, Any] = {}
    for name, v in values.items():
        info = field_info(name)
        default = info["default"]
        if isinstance(default, list):
            out[name] = [_round(x * v) for x in default]
        elif isinstance(default, int) and not isinstance(default, bool):
            out[name] = int(round(v))
        else:
            out[name] = _round(v)
    return out


def _round(x: float, digits: int = 4) -> float:
    """Four significant figures: what a parameter file should show."""
    if x == 0 or not np.isfinite(x):
        return float(x)
    return float(f"{x:.{digits}g}")


# -- running replicates -------------------------------------------------------------------------


def run_replicate(params: Parameters, seed: int, years: float, average_years: float = 1.0) -> dict[str, float]:
    """One replicate: every metric's mean over the final ``average_years`` (default: the final
    year, as summary.csv), and the ACE odds ratio on the final state."""
    from oudsim.model.oud_model import OUDModel  # imported here: workers import it once

    t0 = time.perf_counter()
    model = OUDModel(rng=seed, params=params)
    steps = int(round(years * 52 / params.simulation.dt_weeks))
    model.run_for(steps)
    df = model.metrics_frame()
    last = float(df["year"].max())
    sel = df["year"] > max(last - average_years, 0.0) if last > 0 else df["year"] >= last
    out = {k: float(v) for k, v in df.loc[sel, list(METRIC_NAMES)].mean().items()}
    out[ODDS_RATIO] = float(odds_ratio(model))
    out.update(log_measures(model, df))
    out["seconds"] = time.perf_counter() - t0
    return out


def log_measures(model, frame: pd.DataFrame, follow_weeks: int = 26) -> dict[str, float]:
    """Rates read off the transition log over the recorded steps (every step since week 0):

    - ``relapse_after_care_26w``: of the remissions that began on leaving care (treatment -> remission)
      at least ``follow_weeks`` before the end, the share that relapsed (remission -> OUD) within
      ``follow_weeks`` (E16);
    - ``natural_remission_rate``: untreated OUD -> remission per person-year of untreated OUD (E25);
    - ``out_of_care_mortality_ratio``: deaths per person-year of untreated OUD over deaths per
      person-year in OUD care (E21; NaN without deaths in care).

    Person-years come from the metrics frame (prevalences times the population, a step each)."""
    from oudsim.agents.states import Stage

    log = model.transitions.frame()
    dt = model.params.simulation.dt_weeks / 52.0
    n = model.population.n
    end = int(model.week)
    steps = int(round(follow_weeks / model.params.simulation.dt_weeks))
    left = log[(log["from"] == Stage.TREATMENT) & (log["to"] == Stage.REMISSION) & (log["week"] <= end - steps)]
    relapses = log[(log["from"] == Stage.REMISSION) & (log["to"] == Stage.OUD)]
    relapsed = 0
    if len(left):
        first = left.merge(relapses, on="person", suffixes=("", "_r"))
        first = first[(first["week_r"] > first["week"]) & (first["week_r"] <= first["week"] + steps)]
        relapsed = first.drop_duplicates(["person", "week"]).shape[0]
    rec = frame[frame["step"] > 0]  # each recorded step after week 0 (the log starts there)
    py_untreated = float(rec["untreated_oud_prevalence"].sum()) * n * dt
    py_care = float((rec["oud_prevalence"] - rec["untreated_oud_prevalence"]).sum()) * n * dt
    natural = ((log["from"] == Stage.OUD) & (log["to"] == Stage.REMISSION)).sum()
    died_out = ((log["from"] == Stage.OUD) & (log["to"] == Stage.DECEASED)).sum()
    died_in = ((log["from"] == Stage.TREATMENT) & (log["to"] == Stage.DECEASED)).sum()
    rate_out = died_out / py_untreated if py_untreated else float("nan")
    rate_in = died_in / py_care if py_care else float("nan")
    return {
        "relapse_after_care_26w": relapsed / len(left) if len(left) else float("nan"),
        "natural_remission_rate": natural / py_untreated if py_untreated else float("nan"),
        "out_of_care_mortality_ratio": rate_out / rate_in if rate_in and rate_in > 0 else float("nan"),
    }


def replicate_seeds(seed: int, replicates: int) -> list[int]:
    try:
        from oudsim.model.experiments import replicate_seeds
    except ImportError:  # pragma: no cover - experiments is optional for this module
        children = np.random.SeedSequence(seed).spawn(replicates)
        return [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]
    return replicate_seeds(seed, replicates)


class _Inline(cf.Executor):
    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as e:  # noqa: BLE001 - handed to the caller through the future
            fut.set_exception(e)
        return fut


@contextlib.contextmanager
def executor(workers: int, scheduler: Any = None) -> Iterator[cf.Executor]:
    """In-process for one worker, else a process pool (reused across trials); with ``scheduler`` (a
    Dask address), the cluster's workers (as ``oudsim run --scheduler``)."""
    if scheduler:
        from oudsim.model.experiments import _executor

        with _executor(workers, scheduler) as (ex, _slots):
            yield ex
        return
    if workers <= 1:
        yield _Inline()
        return
    import multiprocessing as mp

    # forkserver (as model.experiments): forking a threaded parent can deadlock, and spawn would
    # import the model in every worker.
    from oudsim.model.experiments import start_worker

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["oudsim.model.calibration", "oudsim.model.oud_model"])
    pool = cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=start_worker, initargs=(os.getpid(),)
    )
    try:
        yield pool
    except BaseException:  # Ctrl-C, SIGTERM, an error: end the workers now, not after their runs
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def evaluate(
    params: Parameters,
    *,
    replicates: int = 4,
    years: float = 10.0,
    seed: int = 1,
    workers: int = 1,
    pool: cf.Executor | None = None,
    progress: Progress | None = None,
    done_before: int = 0,
    total: int | None = None,
) -> pd.DataFrame:
    """One row per replicate: ``replicate, seed`` + final-year metric means + the ACE odds ratio."""
    seeds = replicate_seeds(seed, replicates)
    total = total if total is not None else replicates
    with contextlib.ExitStack() as stack:
        ex = pool if pool is not None else stack.enter_context(executor(workers))
        futures = {ex.submit(run_replicate, params, s, years): i for i, s in enumerate(seeds)}
        rows: dict[int, dict[str, float]] = {}
        for n, fut in enumerate(cf.as_completed(futures), start=1):
            rows[futures[fut]] = fut.result()
            if progress is not None:
                progress(done_before + n, total)
    return pd.DataFrame([{"replicate": i, "seed": seeds[i], **rows[i]} for i in range(replicates)])


def summarise(replicates: pd.DataFrame, targets: Sequence[Target] = TARGETS) -> pd.DataFrame:
    """Per target: band, model mean, 2.5–97.5th percentile interval across replicates, inside?"""
    rows = []
    for t in targets:
        v = replicates[t.metric].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        mean = float(v.mean()) if v.size else float("nan")
        lo, hi = np.percentile(v, [2.5, 97.5]) if v.size else (np.nan, np.nan)
        rows.append(
            {
                "metric": t.metric,
                "label": t.label,
                "source": t.source,
                "target": t.target,
                "band_lo": t.lo,
                "band_hi": t.hi,
                "mean": mean,
                "lo": float(lo),
                "hi": float(hi),
                "n": int(v.size),
                "inside": t.inside(mean) if v.size else False,
            }
        )
    return pd.DataFrame(rows)


OUTSIDE_WEIGHT = 10.0  # loss per band width outside a band: being outside dominates any pull


def loss(
    summary: pd.DataFrame,
    pull: float = 1.0,
    targets: Sequence[Target] = TARGETS,
    outside_weight: float = OUTSIDE_WEIGHT,
) -> float:
    """Sum over targets of ``outside_weight`` times the distance outside the band (in band widths;
    0 inside) plus ``pull`` times the squared distance from the point target (in band widths: at
    most ~0.25 * pull for a central target anywhere inside its band)."""
    by = {t.metric: t for t in targets}
    total = 0.0
    for metric, mean in zip(summary["metric"], summary["mean"], strict=True):
        t = by[metric]
        d = t.outside_distance(float(mean))
        total += outside_weight * d + pull * t.centre_distance(float(mean)) ** 2
    return float(total)


# -- the Optuna study ---------------------------------------------------------------------------


@dataclass
class CalibrationResult:
    values: dict[str, float]  # best free-parameter values (vectors: scale factors)
    overrides: dict[str, Any]  # the same as dotted-name overrides (vectors written out)
    params: Parameters
    summary: pd.DataFrame  # the target table at the best values
    replicates: pd.DataFrame  # per-replicate outputs at the best values
    trials: pd.DataFrame  # every trial: number, loss, values
    loss: float
    settings: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def all_inside(self) -> bool:
        return bool(self.summary["inside"].all())


def calibrate(
    base: Parameters | None = None,
    free: Sequence[FreeParameter] = FREE_PARAMETERS,
    *,
    population: int = 10_000,
    replicates: int = 4,
    years: float = 10.0,
    burn_in_years: float | None = None,
    trials: int = 40,
    seed: int = 1,
    workers: int = 1,
    pull: float = 1.0,
    progress: Progress | None = None,
    on_trial: Callable[[int, float, dict[str, float]], None] | None = None,
    scheduler: Any = None,
    storage: str | None = None,
) -> CalibrationResult:
    """Fit the free parameters to the targets with a seeded Optuna TPE study.

    Every trial is scored on the same replicate seeds (common random numbers), so trials differ by
    their parameters, not their luck. Trial 0 is the base values. ``trials=0`` only evaluates
    the base (the target table of the current defaults).
    """
    import optuna

    for p in free:
        p.check()
    names = [p.name for p in free]
    if len(set(names)) != len(names):
        raise ParameterError(f"free parameters repeat a name: {names}")
    if replicates < 1 or population < 10 or years <= 0 or trials < 0:
        raise ParameterError("replicates >= 1, population >= 10, years > 0 and trials >= 0 are required")
    base = base if base is not None else Parameters()
    fixed: dict[str, Any] = {"simulation.population": population}
    if burn_in_years is not None:
        fixed["simulation.burn_in_years"] = burn_in_years
    base = apply_overrides(base, fixed)
    start = {p.name: p.value_in(base) for p in free}
    for p in free:  # the base may lie outside a search range: clip the first trial into it
        start[p.name] = min(max(start[p.name], p.lo), p.hi)

    n_evals = max(trials, 1)
    total = n_evals * replicates
    settings = dict(
        population=population,
        replicates=replicates,
        years=years,
        trials=trials,
        seed=seed,
        pull=pull,
        burn_in_years=base.simulation.burn_in_years,
        free=[(p.name, p.lo, p.hi, p.log) for p in free],
    )
    records: list[dict[str, Any]] = []
    evaluated: dict[int, tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]] = {}
    interrupted = False

    def score(values: dict[str, float], pool: cf.Executor) -> tuple[float, pd.DataFrame, pd.DataFrame]:
        params = apply_overrides(base, overrides_for(values)) if values else base
        reps = evaluate(
            params,
            replicates=replicates,
            years=years,
            seed=seed,
            pool=pool,
            progress=progress,
            done_before=len(records) * replicates,
            total=total,
        )
        summary = summarise(reps)
        return loss(summary, pull), summary, reps

    with executor(workers, scheduler) as pool:
        if trials == 0:
            value, summary, reps = score({}, pool)
            records.append({"trial": 0, "loss": value, **start})
            evaluated[0] = (summary, reps, start)
        else:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            with warnings.catch_warnings():  # multivariate TPE is marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, trials), multivariate=True)
            # With a storage (an Optuna RDB URL such as sqlite:///study.db, or a journal file), the study
            # outlives the process: a rerun continues it, and processes on several machines that share
            # the storage add trials to the one study.
            study = optuna.create_study(
                direction="minimize",
                sampler=sampler,
                storage=_storage(storage),
                study_name=_study_name(settings, base) if storage else None,
                load_if_exists=True,
            )
            finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
            for t in finished:  # earlier trials count toward the best
                records.append({"trial": t.number, "loss": t.value, **t.params})
            if not study.trials:
                study.enqueue_trial(start)

            def objective(trial: Any) -> float:
                values = {p.name: trial.suggest_float(p.name, p.lo, p.hi, log=p.log) for p in free}
                value, summary, reps = score(values, pool)
                records.append(
                    {
                        "trial": trial.number,
                        "loss": value,
                        **values,
                        **{f"model:{m}": x for m, x in zip(summary["metric"], summary["mean"], strict=True)},
                    }
                )
                evaluated[trial.number] = (summary, reps, values)
                if on_trial is not None:
                    on_trial(trial.number, value, values)
                return value

            try:
                study.optimize(objective, n_trials=max(trials - len(finished), 0), gc_after_trial=False)
            except KeyboardInterrupt:
                interrupted = True
                if not evaluated:
                    raise
    best = min(records, key=lambda r: r["loss"])
    if best["trial"] not in evaluated:  # the best is a trial of an earlier process: score it here
        with executor(workers, scheduler) as pool:
            values = {p.name: best[p.name] for p in free}
            _, summary, reps = score(values, pool)
            evaluated[best["trial"]] = (summary, reps, values)
    summary, reps, values = evaluated[best["trial"]]
    overrides = overrides_for(values)
    return CalibrationResult(
        values=dict(values),
        overrides=overrides,
        params=apply_overrides(base, overrides),
        summary=summary,
        replicates=reps,
        trials=pd.DataFrame(records),
        loss=min(r["loss"] for r in records),
        settings=settings,
        interrupted=interrupted,
    )


def _storage(storage: str | None) -> Any:
    """An Optuna storage: a URL (sqlite:///..., postgresql://...) as is, a path as a journal file."""
    if not storage:
        return None
    if "://" in storage:
        return storage
    import optuna
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(storage))


def _study_name(settings: dict[str, Any], base: Parameters) -> str:
    """One study per fit (settings and fixed parameters): a storage may hold studies of other fits."""
    import hashlib
    import json

    key = {**{k: v for k, v in settings.items() if k != "trials"}, "base": base.model_dump(mode="json")}
    return "oudsim-" + hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]


# -- output -------------------------------------------------------------------------------------


def format_value(x: float | None, metric: str) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    if metric in ("oud_death_rate", "overdose_death_rate", ODDS_RATIO):
        return f"{x:.1f}"
    if metric == "out_of_care_mortality_ratio":  # a ratio, not a share
        return f"{x:.2f}"
    if metric == "natural_remission_rate":  # a rate per person-year
        return f"{x:.3f}/yr"
    return f"{100 * x:.1f}%"


def format_table(summary: pd.DataFrame) -> str:
    """The target table as Markdown: target, band, model mean, 95% interval, inside?"""
    head = (
        "target",
        "evidence",
        "point",
        "band",
        "model mean",
        "95% interval (replicates)",
        "inside band",
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.itertuples(index=False):
        m = r.metric
        target = None if r.target is None or pd.isna(r.target) else float(r.target)
        cells = (
            f"`{m}`",
            r.source,
            format_value(target, m),
            f"{format_value(r.band_lo, m)} – {format_value(r.band_hi, m)}",
            format_value(r.mean, m),
            f"{format_value(r.lo, m)} – {format_value(r.hi, m)}",
            "yes" if r.inside else "**no**",
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"cannot write {v!r} to TOML")


RUN_SETTINGS = ("simulation.population", "simulation.burn_in_years")


def changed_values(params: Parameters, reference: Parameters | None = None) -> dict[str, Any]:
    """Every parameter whose value differs from the reference (the schema defaults), by dotted
    name, leaving out run settings (population, burn-in): what a parameter file must hold to
    reproduce ``params``."""
    reference = reference if reference is not None else Parameters()

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    new, old = flat(params.model_dump()), flat(reference.model_dump())
    return {k: v for k, v in new.items() if v != old[k] and k not in RUN_SETTINGS and v is not None}


def write_parameter_file(path: str | Path, overrides: dict[str, Any], header: Sequence[str] = ()) -> Path:
    """A TOML parameter file: a ``[parameters]`` table of dotted names (TOML dotted keys, so
    ``Parameters.from_file`` reads them as the nested tree). Written atomically."""
    path = Path(path)
    apply_overrides(Parameters(), overrides)  # refuse to write what cannot be read back
    lines = [f"# {h}" for h in header]
    lines += ["[parameters]"]
    lines += [f"{name} = {_toml_value(v)}" for name, v in sorted(overrides.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def write_outputs(result: CalibrationResult, out: str | Path, command: str = "") -> dict[str, Path]:
    """calibration.csv (target table), replicates.csv, trials.csv, fitted.toml, calibration.md, manifest.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "table": out / "calibration.csv",
        "replicates": out / "replicates.csv",
        "trials": out / "trials.csv",
        "fitted": out / "fitted.toml",
        "markdown": out / "calibration.md",
        "manifest": out / "manifest.json",
    }
    result.summary.to_csv(paths["table"], index=False)
    result.replicates.to_csv(paths["replicates"], index=False)
    result.trials.to_csv(paths["trials"], index=False)
    s = result.settings
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        f"Fitted by oudsim calibrate ({stamp}): {s.get('trials')} trials, population "
        f"{s.get('population')}, {s.get('replicates')} replicates, {s.get('years')} years after "
        f"{s.get('burn_in_years')} years of burn-in, seed {s.get('seed')}; loss {result.loss:.4g}.",
    ]
    if command:
        header.append(f"Command: {command}")
    write_parameter_file(paths["fitted"], changed_values(result.params), header)
    md = [
        "# Calibration result",
        "",
        f"Command: `{command}`" if command else "",
        "",
        f"Population {s.get('population')}, {s.get('replicates')} replicates, "
        f"{s.get('years')} years recorded after {s.get('burn_in_years')} years of burn-in; each "
        "replicate's value is its final-year mean (the odds ratio: its final state). Loss "
        f"{result.loss:.4g}; all targets inside their bands: "
        f"{'yes' if result.all_inside else 'no'}.",
        "",
        format_table(result.summary),
        "",
        "Fitted values:",
        "",
        *[f"- `{k}` = {v}" for k, v in sorted(result.overrides.items())],
        "",
    ]
    paths["markdown"].write_text("\n".join(md))
    paths["manifest"].write_text(json.dumps(manifest(s, command, loss=result.loss), indent=2, default=str) + "\n")
    return paths


def manifest(settings: dict[str, Any], command: str = "", **extra: Any) -> dict[str, Any]:
    """What made a study's files: the oudsim version (with Python's, numpy's, numba's), the command, the
    settings, and anything else given (a run's manifest.json has the same ``version``)."""
    from oudsim import versions

    v = versions()
    made_by = {"package": "oudsim", "version": v.pop("oudsim"), **v}
    return {**made_by, **({"command": command} if command else {}), "settings": settings, **extra}


# -- parameter uncertainty: accepted parameter sets (model.posterior) -------------------------------


def sample_posterior(
    params: Parameters,
    free: Sequence[FreeParameter] = FREE_PARAMETERS,
    *,
    steps: int,
    population: int = 10_000,
    replicates: int = 4,
    years: float = 10.0,
    burn_in_years: float | None = None,
    seed: int = 1,
    workers: int = 1,
    scheduler: Any = None,
    step: float | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> Any:
    """Accepted parameter sets by ABC-MCMC from ``params``' values (model.posterior): ``steps`` states,
    each scored like a calibration trial; with ``out``, the chain is written after every step to
    ``out/chain.parquet`` (``resume`` continues it) and the posterior to ``out/posterior.parquet``."""
    from oudsim.model import posterior as post

    for p in free:
        p.check()
    if steps < 1:
        raise ParameterError("the posterior needs at least 1 step")
    fixed: dict[str, Any] = {"simulation.population": population}
    if burn_in_years is not None:
        fixed["simulation.burn_in_years"] = burn_in_years
    base = apply_overrides(params, fixed)
    start = {p.name: min(max(p.value_in(params), p.lo), p.hi) for p in free}
    settings = dict(
        population=population,
        replicates=replicates,
        years=years,
        burn_in_years=base.simulation.burn_in_years,
        seed=seed,
        step=step or post.DEFAULT_STEP,
        free=[(p.name, p.lo, p.hi, p.log) for p in free],
        start=start,
    )
    chain_path = Path(out) / "chain.parquet" if out is not None else None
    chain = None
    if resume and chain_path is not None and chain_path.is_file():
        from oudsim.model.user_files import read_parquet

        chain = read_parquet(chain_path, error=ParameterError)
        if list(chain.columns) != ["step", *[p.name for p in free], "accepted", "loss"]:
            raise ParameterError(f"{chain_path}: a chain of other free parameters; start afresh without --resume")
    done_before = 0 if chain is None else len(chain)

    def write(df: pd.DataFrame) -> None:
        if chain_path is not None:
            from oudsim.model.results_folder import atomic_write

            chain_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(chain_path, lambda tmp: df.to_parquet(tmp, index=False))
        if progress is not None:
            progress(len(df), steps)

    with executor(workers, scheduler) as pool:

        def judge(values: dict[str, float]) -> tuple[bool, float]:
            reps = evaluate(
                apply_overrides(base, overrides_for(values)), replicates=replicates, years=years, seed=seed, pool=pool
            )
            summary = summarise(reps)
            return bool(summary["inside"].all()), loss(summary)

        chain = post.abc_mcmc(
            free, start, judge, steps=steps, seed=seed, step=settings["step"], chain=chain, on_step=write
        )
    accepted = float(chain["accepted"].iloc[1:].mean()) if len(chain) > 1 else float("nan")
    result = post.Posterior(
        chain.reset_index(drop=True),
        {"method": "ABC-MCMC (Marjoram et al. 2003), accepted = every target inside its band", "settings": settings,
         "acceptance_rate": accepted, "resumed_from_step": done_before,
         "targets": [(t.metric, t.lo, t.hi, t.source) for t in TARGETS]},
    )  # fmt: skip
    if out is not None:
        result.save(Path(out) / "posterior.parquet")
    return result
