"""Experiments: replicates of scenarios, in worker processes or on a Dask cluster, streamed to disk.

One code path runs everything; only the executor changes (in-process for one worker, a local process
pool for several, a Dask ``Client`` executor for a cluster). Determinism comes from the seeds, never
from the order in which work finishes:

- replicate i of every scenario gets the same seed (paired): child i of
  ``numpy.random.SeedSequence(seed)``;
- each finished replicate is written at once as its own Parquet part (``DIR/parts/``), so memory
  holds only what is in flight plus one row of final-year means per replicate, and an interrupted
  run keeps every finished replicate (``resume=True`` skips them);
- the final files are assembled from the parts in scenario and replicate order, so they are
  identical whatever the worker count, scheduler or completion order.

Every file is written under a temporary name and moved into place with ``os.replace``: no
half-written file is ever left under a final name.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import copy
import dataclasses
import functools
import hashlib
import itertools
import json
import os
import platform
import shutil
import signal
import subprocess
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oudsim.model import snapshots
from oudsim.model.console import MAX_REPLICATES
from oudsim.model.interventions import InterventionSchedule
from oudsim.model.metrics import METRIC_NAMES
from oudsim.model.results_folder import PARTS, atomic_write, atomic_write_text, claim, read_part, write_part
from oudsim.model.user_files import read_parquet, read_table
from oudsim.scenarios import Scenario, ScenarioError, load_scenario

__all__ = [
    "ID_COLUMNS",
    "ExperimentResult",
    "ReplicateFailure",
    "ReplicatesFailed",
    "compare",
    "final_year_means",
    "grid_variants",
    "replicate_seeds",
    "run_experiment",
    "run_replicates",
    "summarise",
    "summarise_finals",
]

ID_COLUMNS: tuple[str, ...] = ("scenario", "replicate", "seed", "step", "year")
SUMMARY_COLUMNS: tuple[str, ...] = ("scenario", "metric", "mean", "lo", "hi", "n")
COMPARISON_COLUMNS: tuple[str, ...] = (
    "scenario",
    "base",
    "metric",
    "base_mean",
    "scenario_mean",
    "diff",
    "lo",
    "hi",
    "rel_diff",
    "n",
)
# Test hook: "scenario:replicate[,...]" makes those replicates raise; "scenario:replicate:exit"
# ends the worker process running it instead (as an out-of-memory kill would).
FAIL_HOOK_ENV = "OUDSIM_FAIL_REPLICATES"
EXIT_ORPHANED = 75  # a worker whose run is gone (its exit code, should anything wait for it)

ScenarioRef = str | Path | Scenario
Progress = Callable[[int, int], None]


# -- seeds and tasks ---------------------------------------------------------------------------


def replicate_seeds(seed: int, replicates: int) -> list[int]:
    """Seed of each replicate: child i of SeedSequence(seed), as a 63-bit int (fits an int64).

    Child i does not depend on how many children are spawned, so replicate i keeps its seed when a
    run is extended with more replicates.
    """
    children = np.random.SeedSequence(seed).spawn(replicates)
    return [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]


@dataclass(frozen=True)
class ReplicateTask:
    scenario: Scenario
    replicate: int
    seed: int
    years: float
    # The folder of burned-in states to start from and keep (model.snapshots), chosen by the run, not
    # by a worker, whose environment may differ; None: burn in afresh. The output is the same.
    warm_start: str | None = None

    @property
    def steps(self) -> int:
        return int(round(self.years * 52 / self.scenario.params.simulation.dt_weeks))

    @functools.cached_property  # hashes the whole parameter tree: once per task
    def fingerprint(self) -> str:
        """What determines this replicate's output; a resumed part is reused only if it matches."""
        spec = {
            "name": self.scenario.name,  # two names with one file-name slug (arm/1, arm_1) get two files
            "params": self.scenario.params.model_dump(mode="json"),
            "interventions": [i.model_dump(mode="json") for i in self.scenario.interventions],
            "seed": self.seed,
            "steps": self.steps,
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    @functools.cached_property  # hashes the whole parameter tree: once per task
    def burn_in_key(self) -> str:
        """What the state at week 0 depends on: the parameters before interventions and the seed
        (interventions act from week 1). Replicates with one key start from one burn-in."""
        spec = {"params": self.scenario.params.model_dump(mode="json"), "seed": self.seed}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    @functools.cached_property
    def quiet_steps(self) -> int:
        """Recorded steps before any of the scenario's interventions acts (all of them without one):
        replicates that share a burn-in are the same until then, too."""
        dt = self.scenario.params.simulation.dt_weeks
        first = InterventionSchedule(list(self.scenario.interventions), self.scenario.params).first_week(dt)
        return self.steps if first is None else min(self.steps, first - 1)

    @property
    def part_name(self) -> str:
        slug = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in self.scenario.name)[:60]
        return f"{slug}-r{self.replicate:05d}-{self.fingerprint}.parquet"


@dataclass
class ReplicateOutcome:
    """What a worker sends back: the frame, or the error (exceptions may not pickle)."""

    scenario: str
    replicate: int
    seed: int
    seconds: float
    frame: pd.DataFrame | None = None
    error: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class ReplicateFailure:
    scenario: str
    replicate: int
    seed: int
    error: str
    traceback: str = ""

    def __str__(self) -> str:
        return f"{self.scenario} replicate {self.replicate} (seed {self.seed}): {self.error}"


def run_batch(tasks: Sequence[ReplicateTask]) -> list[ReplicateOutcome]:
    """Run replicates that share a burn-in (one ``burn_in_key``: the arms of one replicate of a
    comparison) in a worker: the burn-in and the weeks before any arm's interventions act once, then
    each arm from a copy of that state, which gives the frames that building each arm afresh would
    (model.oud_model.OUDModel.start_interventions).
    Errors are returned, not raised, one outcome per task."""
    t0 = time.perf_counter()
    first = tasks[0]
    assert all(t.burn_in_key == first.burn_in_key for t in tasks), "a batch shares one burn-in"
    _share_cores_in_dask_worker()
    # The arms are the same until the first of their interventions acts (every shipped one starts
    # after a year): those steps are run once too, after the burn-in.
    together = min(task.quiet_steps for task in tasks)
    where = Path(first.warm_start) if first.warm_start is not None else None
    try:  # metrics only: no agents
        warm = snapshots.burned_in(first.scenario.params, first.seed, warm_start=where is not None, where=where)
        warm.run_for(together)
    except Exception as e:  # noqa: BLE001 - every replicate of the batch fails alike
        failed = _failure(first, e, time.perf_counter() - t0)
        return [dataclasses.replace(failed, scenario=t.scenario.name, replicate=t.replicate) for t in tasks]
    shared = (time.perf_counter() - t0) / len(tasks)  # the shared part's time, charged to each arm alike
    outcomes = []
    for k, task in enumerate(tasks):
        t1 = time.perf_counter()
        try:
            _fault_hook(task)
            model = warm if k == len(tasks) - 1 else copy.deepcopy(warm)
            model.start_interventions(list(task.scenario.interventions))
            model.run_for(task.steps - together)
            frame = model.metrics_frame()
            frame.insert(0, "scenario", task.scenario.name)
            frame.insert(1, "replicate", task.replicate)
            frame.insert(2, "seed", task.seed)
            frame = frame.astype({"replicate": "int64", "seed": "int64", "step": "int64", "year": "float64"})
            seconds = shared + time.perf_counter() - t1
            outcomes.append(ReplicateOutcome(task.scenario.name, task.replicate, task.seed, seconds, frame))
        except Exception as e:  # noqa: BLE001 - any failure of one replicate is reported, the rest go on
            outcomes.append(_failure(task, e, shared + time.perf_counter() - t1))
    return outcomes


def _failure(task: ReplicateTask, e: Exception, seconds: float, message: str | None = None) -> ReplicateOutcome:
    """The outcome of a replicate that failed with ``e`` (``message`` says it in other words)."""
    return ReplicateOutcome(
        task.scenario.name,
        task.replicate,
        task.seed,
        seconds,
        error=message or f"{type(e).__name__}: {e}",
        traceback="".join(traceback.format_exception(e)),
    )


def _fault_hook(task: ReplicateTask) -> None:
    wanted = {w.strip() for w in os.environ.get(FAIL_HOOK_ENV, "").split(",")}
    me = f"{task.scenario.name}:{task.replicate}"
    if f"{me}:exit" in wanted:
        import multiprocessing

        if multiprocessing.parent_process() is not None:  # only ever end a worker process
            os._exit(70)  # as the out-of-memory killer would
    if me in wanted or f"{me}:exit" in wanted:
        raise RuntimeError(f"injected failure ({FAIL_HOOK_ENV})")


# -- executors: the one thing that differs between a laptop and a cluster ----------------------


class _InlineExecutor(cf.Executor):
    """Runs each task when submitted, in this process (one worker: no pool start-up cost)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        fut: cf.Future = cf.Future()
        fut.set_running_or_notify_cancel()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:  # KeyboardInterrupt must reach the caller, not hide in a future
            if not isinstance(e, Exception):
                raise
            fut.set_exception(e)
        return fut


ORPHAN_CHECK_S = 0.5  # how often a worker process looks whether the run it works for still exists


def start_worker(run: int, threads: int = 1) -> None:
    """What every local worker process does first (the pool's initializer; ``run``: the run's pid;
    ``threads``: its models' threads, its share of the cores).

    Ctrl-C reaches the whole process group; only the run reacts (it stops the workers). And a worker
    never outlives its run: a run killed outright (kill -9, the out-of-memory killer) cannot stop its
    workers, and they would wait for work forever (with the forkserver they started from, which they
    keep alive), so a thread in each ends it once the run is gone.
    """
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["OUDSIM_THREADS"] = str(threads)  # (oud_model.default_threads)

    def watch() -> None:
        while _running(run):
            time.sleep(ORPHAN_CHECK_S)
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="oudsim-orphan-watch", daemon=True).start()


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (a zombie, killed and not yet reaped, has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: the state after the command's name; "Z" is a zombie, "X" dead
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


@contextlib.contextmanager
def _executor(workers: int, scheduler: Any) -> Iterator[tuple[cf.Executor, int]]:
    """The executor and how many tasks to keep in flight (``scheduler``: an address or a Client)."""
    if scheduler is not None and not isinstance(scheduler, str):  # a connected distributed.Client
        slots = max(sum(scheduler.nthreads().values()), 1)
        yield scheduler.get_executor(pure=False), 2 * slots
        return
    if scheduler:
        client = connect(scheduler)
        try:
            slots = max(sum(client.nthreads().values()), 1)
            yield client.get_executor(pure=False), 2 * slots
        finally:
            client.close()
        return
    if workers <= 1:
        yield _InlineExecutor(), 1
        return
    import multiprocessing as mp

    # forkserver: workers fork from a clean server that imported the model once (fork from a
    # threaded parent can deadlock; spawn would pay the import in every worker).
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["oudsim.model.experiments", "oudsim.model.oud_model"])
    pool = _ProcessPool(workers, ctx)
    try:
        yield pool, 2 * workers
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _share_cores_in_dask_worker() -> None:
    """In a Dask worker, which runs a task in each of its threads, each model takes its share of the
    cores (unless OUDSIM_THREADS says otherwise), as local workers do (start_worker)."""
    from oudsim.model.oud_model import cores, requested_threads

    if requested_threads() is not None:
        return
    try:
        from distributed import get_worker

        slots = get_worker().state.nthreads
    except Exception:  # noqa: BLE001 - not in a Dask worker (or no distributed): nothing to share
        return
    os.environ["OUDSIM_THREADS"] = str(max(1, cores() // max(int(slots), 1)))


def worker_threads(workers: int) -> int:
    """Threads for each of ``workers`` local worker processes: what ``OUDSIM_THREADS`` asks for, else
    an equal share of the cores (two workers on two cores: one thread each; one worker: both)."""
    from oudsim.model.oud_model import cores, requested_threads

    asked = requested_threads()
    return asked if asked is not None else max(1, cores() // max(workers, 1))


class _ProcessPool(cf.Executor):
    """A local process pool that starts afresh when a worker process dies.

    A ProcessPoolExecutor whose worker died (out of memory, killed) refuses all further work; this
    one replaces it, so the remaining replicates still run.
    """

    def __init__(self, workers: int, ctx: Any) -> None:
        self._workers, self._ctx = workers, ctx
        self._pool = self._new()

    def _new(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=self._ctx,
            initializer=start_worker,
            initargs=(os.getpid(), worker_threads(self._workers)),
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new()
            return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def terminate(self) -> None:
        """End the worker processes now (Ctrl-C, cancellation)."""
        procs = list((getattr(self._pool, "_processes", None) or {}).values())
        terminate = getattr(self._pool, "terminate_workers", None)  # Python >= 3.14
        if terminate is not None:
            terminate()
        else:
            for proc in procs:
                proc.terminate()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:  # reaped now, so nothing is left for interpreter exit to wait on
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)


CONNECT_GRACE_S = 5.0  # beyond the Client's own timeout, for the handshake


def connect(address: str, timeout: str = "10s") -> Any:
    """A Dask ``distributed.Client`` for a scheduler address, or a ScenarioError saying why not."""
    try:
        from distributed import Client
    except ImportError:
        raise ScenarioError("--scheduler needs Dask distributed: pip install 'oudsim[distributed]'") from None
    import threading

    from dask.utils import parse_timedelta

    # The Client's own timeout covers the connection, not the handshake after it: a listener that
    # accepts and never answers (or an HTTP server) would hold it for ever. Wait for it in a thread.
    outcome: dict[str, Any] = {}

    def start() -> None:
        try:
            outcome["client"] = Client(address, timeout=timeout)
        except BaseException as e:  # noqa: BLE001 - reported below, in the caller's thread
            outcome["error"] = e

    thread = threading.Thread(target=start, name="oudsim-dask-connect", daemon=True)
    thread.start()
    seconds = parse_timedelta(timeout) + CONNECT_GRACE_S
    thread.join(seconds)
    if thread.is_alive():
        raise ScenarioError(
            f"cannot reach the Dask scheduler at {address}: nothing answered as a Dask scheduler within "
            f"{seconds:g} s (is it the scheduler's address, tcp://host:8786?)"
        )
    error = outcome.get("error")
    if isinstance(error, OSError | TimeoutError | ValueError):
        raise ScenarioError(f"cannot reach the Dask scheduler at {address}: {error}") from None
    if error is not None:
        raise ScenarioError(f"cannot reach the Dask scheduler at {address}: {type(error).__name__}: {error}") from None
    return outcome["client"]


def _stop_now(executor: cf.Executor) -> None:
    """Stop running work at once (after Ctrl-C): cancel what waits, end the worker processes."""
    if isinstance(executor, _ProcessPool):
        executor.terminate()
    else:
        executor.shutdown(wait=False)  # a Dask ClientExecutor cancels its futures on shutdown


# -- summaries -----------------------------------------------------------------------------------


def final_year_means(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (scenario, replicate): each metric averaged over the final simulated year.

    The final year is the steps with year > (last year - 1); a run shorter than a year uses every
    step after step 0 (step 0, the end of burn-in, alone if that is all there is).
    """
    metrics = [m for m in METRIC_NAMES if m in df.columns]
    rows = []
    for (scenario, replicate), g in df.groupby(["scenario", "replicate"], sort=False):
        last = g["year"].max()
        sel = g["year"] > max(last - 1.0, 0.0) if last > 0 else g["year"] >= last
        rows.append(
            {
                "scenario": scenario,
                "replicate": int(replicate),
                "seed": int(g["seed"].iloc[0]),
                **g.loc[sel, metrics].mean().to_dict(),
            }
        )
    return pd.DataFrame(rows, columns=["scenario", "replicate", "seed", *metrics])


def summarise_finals(finals: pd.DataFrame, scenario_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean and 2.5th–97.5th percentiles across replicates of the final-year means, per metric."""
    metrics = [m for m in METRIC_NAMES if m in finals.columns]
    order = list(scenario_order) if scenario_order is not None else list(dict.fromkeys(finals["scenario"]))
    rows = []
    for scenario in order:
        g = finals[finals["scenario"] == scenario]
        for metric in metrics:
            values = g[metric].to_numpy(dtype=float)
            values = values[~np.isnan(values)]
            if values.size == 0:
                rows.append((scenario, metric, np.nan, np.nan, np.nan, 0))
                continue
            lo, hi = np.percentile(values, [2.5, 97.5])
            rows.append((scenario, metric, float(values.mean()), float(lo), float(hi), int(values.size)))
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """``scenario, metric, mean, lo, hi, n`` over the final simulated year of each replicate."""
    return summarise_finals(final_year_means(df))


def compare(finals: pd.DataFrame, base: str, others: Sequence[str]) -> pd.DataFrame:
    """Paired difference of each scenario from ``base``, per metric, with a 95% interval.

    Replicate i of every scenario shares a seed, so the differences are paired: ``diff`` is the
    mean of (scenario - base) over replicates and ``lo``/``hi`` the 95% t-interval of that mean.
    Replicates that
    failed in either scenario are left out of the pair count ``n``.
    """
    from scipy import stats

    metrics = [m for m in METRIC_NAMES if m in finals.columns]
    b = finals[finals["scenario"] == base].set_index("replicate")
    if b.empty:
        raise ScenarioError(f"no finished replicates of the base scenario '{base}' to compare with")
    rows = []
    for other in others:
        o = finals[finals["scenario"] == other].set_index("replicate")
        common = b.index.intersection(o.index)
        if (b.loc[common, "seed"] != o.loc[common, "seed"]).any():
            raise ScenarioError(f"'{other}' and '{base}' were run with different seeds: they cannot be paired")
        n = len(common)
        for metric in metrics:
            base_values = b.loc[common, metric].to_numpy(dtype=float)
            diffs = o.loc[common, metric].to_numpy(dtype=float) - base_values
            mean_diff = float(diffs.mean()) if n else np.nan
            if n >= 2:
                half = float(stats.t.ppf(0.975, n - 1) * diffs.std(ddof=1) / np.sqrt(n))
            else:
                half = np.nan
            base_mean = float(base_values.mean()) if n else np.nan
            rows.append(
                (
                    other,
                    base,
                    metric,
                    base_mean,
                    base_mean + mean_diff if n else np.nan,
                    mean_diff,
                    mean_diff - half,
                    mean_diff + half,
                    mean_diff / base_mean if base_mean else np.nan,
                    n,
                )
            )
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))


# -- sweeps ----------------------------------------------------------------------------------------


def grid_variants(base: ScenarioRef, grid: dict[str, Sequence[Any]]) -> list[tuple[Scenario, dict[str, Any]]]:
    """Every combination of grid values (full factorial): a validated scenario and its values."""
    scenario = load_scenario(base)
    names = list(grid)
    variants = []
    for combo in itertools.product(*(grid[n] for n in names)):
        values = dict(zip(names, combo, strict=True))
        label = f"{scenario.name}[" + ",".join(f"{n}={_fmt_value(v)}" for n, v in values.items()) + "]"
        variants.append((scenario.with_overrides(values, name=label), values))
    return variants


def _fmt_value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


# -- running --------------------------------------------------------------------------------------


@dataclass
class ExperimentResult:
    scenarios: list[Scenario]
    seeds: list[int]
    finals: pd.DataFrame  # final-year means, one row per finished replicate
    summary: pd.DataFrame
    failures: list[ReplicateFailure]
    interrupted: bool
    out_dir: Path | None
    resumed: int  # replicates found finished on disk and skipped
    wall_seconds: float
    frames: list[pd.DataFrame] = field(default_factory=list)  # only with keep_frames=True
    manifest: dict[str, Any] = field(default_factory=dict)
    posterior: Any = None  # the parameter draws replicate i took (model.posterior), if any

    @property
    def ok(self) -> bool:
        return not self.failures and not self.interrupted


class ReplicatesFailed(RuntimeError):
    """Some replicates raised: ``failures`` says which (scenario, seed), ``frame`` has the rest."""

    def __init__(self, failures: list[ReplicateFailure], frame: pd.DataFrame) -> None:
        self.failures = failures
        self.frame = frame
        super().__init__(f"{len(failures)} replicate(s) failed: " + "; ".join(map(str, failures)))


def resolve_scenarios(
    scenarios: Iterable[ScenarioRef],
    population: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> list[Scenario]:
    """Load every scenario and apply ``--population`` and ``--set`` before anything runs."""
    extra = dict(overrides or {})
    if population is not None:
        extra["simulation.population"] = population
    resolved = []
    for ref in scenarios:
        s = load_scenario(ref)
        resolved.append(s.with_overrides(extra) if extra else s)
    for s in resolved:  # an edge-list file is input: a bad one is refused here, not in every replicate
        net = s.params.network
        if net.kind == "edgelist":
            from oudsim.model.network import read_edgelist

            read_edgelist(net.edgelist_path, s.params.simulation.population)
    names = [s.name for s in resolved]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ScenarioError(f"scenario names must be unique in one run; repeated: {', '.join(dupes)}")
    if not resolved:
        raise ScenarioError("no scenario given")
    return resolved


def run_experiment(
    scenarios: Iterable[ScenarioRef],
    *,
    replicates: int = 4,
    years: float = 10.0,
    population: int | None = None,
    seed: int = 1,
    workers: int = 1,
    scheduler: Any = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    overrides: dict[str, Any] | None = None,
    progress: Progress | None = None,
    keep_frames: bool = False,
    extra_manifest: dict[str, Any] | None = None,
    posterior: Any = None,
    share_burn_in: bool = True,
    warm_start: bool = False,
) -> ExperimentResult:
    """Run ``replicates`` of each scenario; with ``out_dir``, stream them to disk and write outputs.

    Outputs in ``out_dir``: ``timeseries.parquet``, ``summary.csv``, ``replicates.csv`` (final-year
    means per replicate), ``manifest.json``, and ``parts/`` (a Parquet file per finished replicate,
    kept so ``resume=True`` can skip them). Ctrl-C stops the run, keeps and assembles what finished,
    and returns with ``interrupted=True``.

    The arms of one replicate share their burn-in (``share_burn_in``): it is run once and each arm
    starts from a copy of the state at week 0, with the output of building every arm afresh
    (``share_burn_in=False``). With ``warm_start`` the burned-in states are kept on disk and a rerun
    starts from them (model.snapshots), with the same output.
    """
    if not (1 <= replicates <= MAX_REPLICATES):
        raise ScenarioError(f"replicates = {replicates}: allowed range [1, {MAX_REPLICATES:,}]")
    if not (0 <= years <= 500):
        raise ScenarioError(f"years = {years}: allowed range [0, 500]")
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    resolved = resolve_scenarios(scenarios, population, overrides)
    seeds = replicate_seeds(seed, replicates)
    # Replicate-major order: an interrupted run has whole pairs of scenarios to compare.
    # With a posterior (model.posterior), replicate r of every scenario takes parameter draw r (cycling):
    # the pairs share the draw as well as the seed, so differences carry parameter uncertainty.
    draws = [posterior.overrides(r) if posterior is not None else {} for r in range(replicates)]
    snapshot_folder = str(snapshots.folder()) if warm_start else None
    tasks = [
        ReplicateTask(s.with_overrides(draws[r]), r, seeds[r], years, snapshot_folder)
        for r in range(replicates)
        for s in resolved
    ]
    if posterior is not None:
        extra_manifest = {
            **(extra_manifest or {}),
            "posterior": {
                "file": str(posterior.path),
                "draws": len(posterior),
                "used": min(replicates, len(posterior)),
            },
        }
    total = len(tasks)

    out = Path(out_dir) if out_dir is not None else None
    with contextlib.ExitStack() as owner:
        if out is not None:  # one run at a time; finished results are kept unless overwrite (model.results_folder)
            owner.enter_context(claim(out_dir, resume=resume, overwrite=overwrite))  # out_dir: "" is not "."
        parts_dir = out / PARTS if out is not None else None
        finals_rows: dict[tuple[str, int], dict[str, Any]] = {}
        frames: dict[tuple[str, int], pd.DataFrame] = {}
        timings: dict[tuple[str, int], float] = {}
        failures: list[ReplicateFailure] = []
        todo = tasks
        resumed = 0

        def adopt(task: ReplicateTask, frame: pd.DataFrame) -> None:
            """Count a finished replicate: its final-year means (and frame, if asked for)."""
            key = (task.scenario.name, task.replicate)
            finals_rows[key] = final_year_means(frame).iloc[0].to_dict()
            if keep_frames:
                frames[key] = frame

        if parts_dir is not None:
            todo = []
            damaged = []
            for task in tasks:
                part = parts_dir / task.part_name
                frame = read_part(part, task) if resume and part.is_file() else None
                if frame is not None:
                    adopt(task, frame)
                    resumed += 1
                else:
                    if resume and part.is_file():
                        damaged.append(part.name)
                        part.unlink()
                    todo.append(task)
            if damaged:
                import warnings

                warnings.warn(
                    f"{len(damaged)} damaged or foreign part(s) in {parts_dir} are run again: {', '.join(damaged[:5])}",
                    stacklevel=2,
                )

        done = resumed
        if progress is not None:
            progress(done, total)

        def record(outcome: ReplicateOutcome, task: ReplicateTask) -> None:
            nonlocal done
            key = (task.scenario.name, task.replicate)
            timings[key] = outcome.seconds
            if outcome.error is not None or outcome.frame is None:
                failures.append(
                    ReplicateFailure(
                        task.scenario.name,
                        task.replicate,
                        task.seed,
                        outcome.error or "no result",
                        outcome.traceback or "",
                    )
                )
            else:
                frame = outcome.frame
                if parts_dir is not None:  # on disk before it counts as done
                    atomic_write(parts_dir / task.part_name, lambda tmp: write_part(tmp, frame, task))
                adopt(task, frame)
            done += 1
            if progress is not None:
                progress(done, total)

        interrupted = False
        if todo:
            with _executor(workers, scheduler) as (executor, window):
                try:
                    _drain(executor, window, todo, record, share_burn_in)
                except KeyboardInterrupt:
                    interrupted = True
                    _stop_now(executor)
                except BaseException:  # e.g. a caller's progress callback cancelling: stop workers now
                    _stop_now(executor)
                    raise
            if interrupted and parts_dir is not None:
                # Ctrl-C may land between a part reaching disk and being counted: disk is the record.
                for task in todo:
                    part = parts_dir / task.part_name
                    if (task.scenario.name, task.replicate) not in finals_rows and part.is_file():
                        frame = read_part(part, task)
                        if frame is not None:
                            adopt(task, frame)

        finals = pd.DataFrame(
            [
                finals_rows[(t.scenario.name, t.replicate)]
                for t in _in_output_order(tasks, resolved)
                if (t.scenario.name, t.replicate) in finals_rows
            ],
            columns=["scenario", "replicate", "seed", *METRIC_NAMES],
        ).astype({"replicate": "int64", "seed": "int64"})
        summary = summarise_finals(finals, [s.name for s in resolved])
        result = ExperimentResult(
            scenarios=resolved,
            seeds=seeds,
            finals=finals,
            summary=summary,
            failures=sorted(failures, key=lambda f: ([s.name for s in resolved].index(f.scenario), f.replicate)),
            interrupted=interrupted,
            out_dir=out,
            resumed=resumed,
            wall_seconds=time.perf_counter() - t0,
            posterior=posterior,
        )
        if keep_frames:
            result.frames = [
                frames[(t.scenario.name, t.replicate)]
                for t in _in_output_order(tasks, resolved)
                if (t.scenario.name, t.replicate) in frames
            ]
        result.manifest = _manifest(
            result,
            tasks,
            timings,
            started,
            dict(
                replicates=replicates,
                years=years,
                population=population,
                seed=seed,
                workers=workers,
                scheduler=scheduler if scheduler is None or isinstance(scheduler, str) else scheduler.scheduler.address,
                resume=resume,
                share_burn_in=share_burn_in,
                warm_start=warm_start,
                overrides=overrides or {},
            ),
            extra_manifest,
        )
        if out is not None:
            _write_outputs(out, result, tasks)
        return result


def _drain(
    executor: cf.Executor,
    window: int,
    todo: list[ReplicateTask],
    record: Callable[[ReplicateOutcome, ReplicateTask], None],
    share_burn_in: bool = True,
) -> None:
    """Run ``todo`` in batches that share a burn-in, keeping at most ``window`` batches in flight
    (``window`` is twice the workers: memory holds a few batches' frames, however many replicates
    there are), and record each replicate as its batch finishes.

    When a worker process dies, every batch in flight with it fails alike. Those are run again one at
    a time, then replicate by replicate, so the one that kills its worker is found and reported and
    the others finish.
    """
    from concurrent.futures.process import BrokenProcessPool

    waiting = collections.deque(batches(todo) if share_burn_in else [[t] for t in todo])
    suspects: collections.deque[list[ReplicateTask]] = collections.deque()
    pending: dict[cf.Future, tuple[list[ReplicateTask], bool]] = {}  # future -> (batch, run alone?)

    def submit(batch: list[ReplicateTask], alone: bool) -> None:
        try:
            pending[executor.submit(run_batch, batch)] = (batch, alone)
        except Exception as e:  # noqa: BLE001 - a closed cluster: this batch cannot start
            for task in batch:
                record(_lost(task, e), task)

    def top_up() -> None:
        if suspects:
            if not pending:
                submit(suspects.popleft(), alone=True)
            return
        # `window` is two per worker: one running, one waiting, so no worker idles while this process
        # records what the last one sent.
        while waiting and len(pending) < window:
            submit(waiting.popleft(), alone=False)

    top_up()
    while pending:
        # A timeout keeps the main thread responsive to Ctrl-C while it waits.
        finished, _ = cf.wait(pending, timeout=0.5, return_when=cf.FIRST_COMPLETED)
        for fut in finished:
            batch, alone = pending.pop(fut)
            try:
                outcomes = fut.result()
            except BrokenProcessPool as e:
                if not alone:
                    suspects.append(batch)
                elif len(batch) > 1:  # it ended its worker when run alone: one of its replicates did
                    suspects.extend([task] for task in batch)
                else:
                    record(_lost(batch[0], e), batch[0])  # the culprit
                continue
            except Exception as e:  # noqa: BLE001 - a cluster error (e.g. Dask's KilledWorker)
                outcomes = [_lost(task, e) for task in batch]
            for outcome, task in zip(outcomes, batch, strict=True):
                record(outcome, task)
        top_up()


def batches(tasks: Sequence[ReplicateTask]) -> list[list[ReplicateTask]]:
    """The tasks grouped by burn-in (in order of first appearance): each group runs its burn-in once."""
    groups: dict[str, list[ReplicateTask]] = {}
    for task in tasks:
        groups.setdefault(task.burn_in_key, []).append(task)
    return list(groups.values())


def _lost(task: ReplicateTask, error: Exception) -> ReplicateOutcome:
    """The outcome of a replicate whose worker failed (as opposed to the model raising)."""
    from concurrent.futures.process import BrokenProcessPool

    died = "its worker process died (out of memory, or killed) while running it"
    return _failure(task, error, 0.0, died if isinstance(error, BrokenProcessPool) else None)


def _in_output_order(tasks: list[ReplicateTask], scenarios: list[Scenario]) -> list[ReplicateTask]:
    """Scenario order as given, then replicate: files come out the same however work finished."""
    rank = {s.name: i for i, s in enumerate(scenarios)}
    return sorted(tasks, key=lambda t: (rank[t.scenario.name], t.replicate))


def _write_outputs(out: Path, result: ExperimentResult, tasks: list[ReplicateTask]) -> None:
    import pyarrow.parquet as pq

    parts = [out / PARTS / t.part_name for t in _in_output_order(tasks, result.scenarios)]
    parts = [p for p in parts if p.is_file()]

    def write_timeseries(tmp: Path) -> None:
        # One part at a time into one file: memory holds a single replicate, however many there are.
        schema = _timeseries_schema()
        with pq.ParquetWriter(tmp, schema) as writer:
            for part in parts:
                table = pq.read_table(part).select(schema.names).cast(schema)
                writer.write_table(table)

    atomic_write(out / "timeseries.parquet", write_timeseries)
    atomic_write(out / "summary.csv", lambda tmp: result.summary.to_csv(tmp, index=False))
    atomic_write(out / "replicates.csv", lambda tmp: result.finals.to_csv(tmp, index=False))
    atomic_write_text(out / "manifest.json", json.dumps(result.manifest, indent=2, default=str) + "\n")


def _timeseries_schema() -> Any:
    import pyarrow as pa

    fields = [
        pa.field("scenario", pa.string()),
        pa.field("replicate", pa.int64()),
        pa.field("seed", pa.int64()),
        pa.field("step", pa.int64()),
        pa.field("year", pa.float64()),
        *(pa.field(m, pa.float64()) for m in METRIC_NAMES),
    ]
    return pa.schema(fields)


def _manifest(
    result: ExperimentResult,
    tasks: list[ReplicateTask],
    timings: dict[tuple[str, int], float],
    started: datetime,
    options: dict[str, Any],
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    finished = len(result.finals)
    status = "interrupted" if result.interrupted else ("failed" if result.failures else "complete")
    return {
        "status": status,
        "package": "oudsim",
        "version": package_version(),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "options": options,
        "seeds": {
            "root": options["seed"],
            "replicates": result.seeds,
            "derivation": "SeedSequence(root).spawn(replicates)[i].generate_state(1, uint64) >> 1",
        },
        "replicates": {
            "total": len(tasks),
            "finished": finished,
            "resumed": result.resumed,
            "failed": len(result.failures),
        },
        "failures": [
            {
                "scenario": f.scenario,
                "replicate": f.replicate,
                "seed": f.seed,
                "error": f.error,
                "traceback": f.traceback,
            }
            for f in result.failures
        ],
        "timings": {
            "started": started.isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "wall_seconds": round(result.wall_seconds, 3),
            "replicate_seconds": [
                {"scenario": s, "replicate": r, "seconds": round(sec, 3)} for (s, r), sec in sorted(timings.items())
            ],
        },
        "scenarios": [s.to_dict() for s in result.scenarios],
        **(extra or {}),  # e.g. the command line, a sweep's grid
    }


def package_version() -> str:
    """This oudsim's version (the one ``oudsim --version`` prints and manifests record)."""
    import oudsim

    return oudsim.__version__


def _git_commit() -> str | None:
    """The commit of the source tree the package runs from ("+dirty" with local edits), if known."""
    root = Path(__file__).resolve().parent.parent
    if shutil.which("git") is None or not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}+dirty" if dirty else sha


# -- the in-memory API (dashboard, notebooks) ----------------------------------------------------


def run_replicates(
    scenarios: Iterable[ScenarioRef],
    replicates: int = 4,
    years: float = 10.0,
    population: int | None = None,
    seed: int = 1,
    workers: int = 1,
    progress: Progress | None = None,
    *,
    scheduler: Any = None,
    overrides: dict[str, Any] | None = None,
    out_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Every replicate's time series: ``scenario, replicate, seed, step, year`` + every metric.

    Rows are in scenario order (as given), then replicate, then step, whatever the worker count.
    Raises ``ReplicatesFailed`` (holding the finished frame) if any replicate raised, and
    ``KeyboardInterrupt`` if interrupted.
    """
    result = run_experiment(
        scenarios,
        replicates=replicates,
        years=years,
        population=population,
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        out_dir=out_dir,
        overrides=overrides,
        progress=progress,
        keep_frames=True,
    )
    columns = [*ID_COLUMNS, *METRIC_NAMES]
    frame = pd.concat(result.frames, ignore_index=True)[columns] if result.frames else pd.DataFrame(columns=columns)
    if result.interrupted:
        raise KeyboardInterrupt
    if result.failures:
        raise ReplicatesFailed(result.failures, frame)
    return frame


def read_finals(out_dir: str | Path) -> pd.DataFrame:
    """Final-year means per replicate from a run folder (``replicates.csv``, else the series)."""
    out = Path(out_dir)
    if (out / "replicates.csv").is_file():
        return read_table(out / "replicates.csv")
    if (out / "timeseries.parquet").is_file():
        return final_year_means(read_parquet(out / "timeseries.parquet"))
    raise ScenarioError(f"{out}: no replicates.csv or timeseries.parquet here; run `oudsim run ... --out {out}` first")
