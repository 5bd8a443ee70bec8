"""Experiments: seeds, determinism across executors, summaries, comparisons, streaming, faults."""

from __future__ import annotations

import concurrent.futures as cf
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from oudsim.model import experiments as ex
from oudsim.model.experiments import (
    FAIL_HOOK_ENV,
    ReplicatesFailed,
    compare,
    final_year_means,
    replicate_seeds,
    run_experiment,
    run_replicates,
    summarise,
)
from oudsim.model.metrics import METRIC_NAMES
from oudsim.scenarios import ScenarioError, load_scenario

FAST = {"simulation.burn_in_years": 0}  # no burn-in: these tests check mechanics, not calibration
SMALL = dict(years=1, population=600, overrides=FAST)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    """Two scenarios x 3 replicates, one worker: the frame other runs must reproduce exactly."""
    return run_replicates(["baseline", "stigma_campaign"], replicates=3, seed=11, workers=1, **SMALL)


# -- seeds ----------------------------------------------------------------------------------------


def test_seeds_come_from_one_seed_sequence_and_are_stable_prefixes() -> None:
    seeds = replicate_seeds(5, 6)
    assert len(set(seeds)) == 6
    assert seeds[:3] == replicate_seeds(5, 3)  # adding replicates keeps the earlier ones
    assert seeds != replicate_seeds(6, 6)
    child = np.random.SeedSequence(5).spawn(2)[1]
    assert seeds[1] == int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    assert all(0 <= s < 2**63 for s in seeds)


# -- the run_replicates contract ------------------------------------------------------------------


def test_run_replicates_frame_is_ordered_and_paired(reference: pd.DataFrame) -> None:
    df = reference
    assert list(df.columns) == [*ex.ID_COLUMNS, *METRIC_NAMES]
    assert list(dict.fromkeys(df["scenario"])) == ["baseline", "stigma_campaign"]
    steps = 52  # one year of weekly steps, plus step 0
    assert len(df) == 2 * 3 * (steps + 1)
    seeds = df.groupby(["scenario", "replicate"])["seed"].first().unstack("scenario")
    assert (seeds["baseline"] == seeds["stigma_campaign"]).all()  # replicate i shares its seed
    assert list(seeds["baseline"]) == replicate_seeds(11, 3)
    one = df[(df["scenario"] == "baseline") & (df["replicate"] == 0)]
    assert list(one["step"]) == list(range(steps + 1))
    assert one["year"].iloc[-1] == pytest.approx(1.0)


def test_same_seed_gives_identical_frames_with_two_workers(reference: pd.DataFrame) -> None:
    calls: list[tuple[int, int]] = []
    df = run_replicates(
        ["baseline", "stigma_campaign"],
        replicates=3,
        seed=11,
        workers=2,
        progress=lambda d, t: calls.append((d, t)),
        **SMALL,
    )
    pd.testing.assert_frame_equal(df, reference, check_exact=True)
    assert calls[0] == (0, 6) and calls[-1] == (6, 6)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_a_different_seed_gives_different_results(reference: pd.DataFrame) -> None:
    other = run_replicates(["baseline"], replicates=1, seed=12, workers=1, **SMALL)
    mine = reference[(reference["scenario"] == "baseline") & (reference["replicate"] == 0)]
    assert not np.array_equal(other["oud_prevalence"].to_numpy(), mine["oud_prevalence"].to_numpy())


def test_scenarios_may_be_names_paths_or_objects(reference: pd.DataFrame) -> None:
    from oudsim.scenarios import SCENARIO_DIR

    df = run_replicates(
        [SCENARIO_DIR / "baseline.toml", load_scenario("stigma_campaign")],
        replicates=3,
        seed=11,
        workers=1,
        **SMALL,
    )
    pd.testing.assert_frame_equal(df, reference, check_exact=True)


# -- summaries and comparisons (against hand computation) -----------------------------------------


def synthetic(values: dict[tuple[str, int], list[float]], dt_weeks: int = 26) -> pd.DataFrame:
    """A frame with every metric equal to the given per-step values (steps of dt_weeks)."""
    rows = []
    for (scenario, replicate), series in values.items():
        for step, v in enumerate(series):
            rows.append(
                {
                    "scenario": scenario,
                    "replicate": replicate,
                    "seed": 100 + replicate,
                    "step": step,
                    "year": step * dt_weeks / 52,
                    **dict.fromkeys(METRIC_NAMES, v),
                }
            )
    return pd.DataFrame(rows)


def test_summary_uses_the_final_year_and_percentiles_across_replicates() -> None:
    # Half-year steps over 2 years: steps at years 0, .5, 1, 1.5, 2; the final year is (1, 2].
    df = synthetic({("a", r): [99, 99, 99, r, 3 * r] for r in range(5)})
    finals = final_year_means(df)
    assert finals["oud_prevalence"].tolist() == [2.0 * r for r in range(5)]  # mean of r and 3r
    s = summarise(df).set_index("metric").loc["oud_prevalence"]
    assert s["mean"] == pytest.approx(4.0)
    assert s["lo"] == pytest.approx(np.percentile([0, 2, 4, 6, 8], 2.5))
    assert s["hi"] == pytest.approx(np.percentile([0, 2, 4, 6, 8], 97.5))
    assert s["n"] == 5
    assert list(summarise(df).columns) == ["scenario", "metric", "mean", "lo", "hi", "n"]


def test_paired_comparison_matches_a_paired_t_interval() -> None:
    base = {("base", r): [0, 0, 10.0 + r] for r in range(4)}
    diffs = [1.0, 2.0, 2.5, 4.0]
    other = {("other", r): [0, 0, 10.0 + r + diffs[r]] for r in range(4)}
    finals = final_year_means(synthetic({**base, **other}, dt_weeks=52))
    row = compare(finals, "base", ["other"]).set_index("metric").loc["oud_prevalence"]
    half = stats.t.ppf(0.975, 3) * np.std(diffs, ddof=1) / 2
    assert row["diff"] == pytest.approx(np.mean(diffs))
    assert (row["lo"], row["hi"]) == pytest.approx((np.mean(diffs) - half, np.mean(diffs) + half))
    assert row["base_mean"] == pytest.approx(11.5) and row["n"] == 4


def test_comparison_pairs_by_replicate_and_refuses_unpaired_seeds() -> None:
    finals = final_year_means(synthetic({("b", 0): [1.0], ("b", 1): [2.0], ("o", 1): [5.0]}))
    row = compare(finals, "b", ["o"]).iloc[0]
    assert row["n"] == 1 and row["diff"] == 3.0 and np.isnan(row["lo"])  # replicate 0 of "o" is missing
    finals.loc[finals["scenario"] == "o", "seed"] = 999
    with pytest.raises(ScenarioError, match="different seeds"):
        compare(finals, "b", ["o"])


# -- interventions move outcomes the expected way (paired replicates) -----------------------------
#
# Replicate i of every arm runs on the same seed (common random numbers), so each replicate gives a
# paired difference arm - baseline of its final-year mean. A direction holds when the mean paired
# difference lies beyond T_MIN standard errors on the documented side (a one-sided paired t-test;
# t > 5 with 9-11 degrees of freedom is p < 0.0004). The sizes below were chosen from measurements
# over 12 root seeds each (t values in each test's docstring), so that the smallest t seen is about
# twice T_MIN.

T_MIN = 5.0


def paired_t(finals: pd.DataFrame, metric: str, arm: str, base: str = "baseline") -> tuple[float, float, int]:
    """Mean paired difference (arm - base) of a metric's final-year means, its t statistic, and n.

    t is nan when every difference is zero (an arm without effect), so it fails any threshold.
    """
    seeds = finals.pivot(index="replicate", columns="scenario", values="seed")
    assert (seeds[arm] == seeds[base]).all(), "replicates are not paired by seed"
    values = finals.pivot(index="replicate", columns="scenario", values=metric)
    d = (values[arm] - values[base]).to_numpy(dtype=float)
    n = d.size
    se = d.std(ddof=1) / np.sqrt(n)
    mean = float(d.mean())
    if se > 0:
        t = mean / se
    else:
        t = float(np.sign(mean) * np.inf) if mean else float("nan")
    return mean, t, n


def assert_paired_effect(finals: pd.DataFrame, metric: str, arm: str, direction: int) -> float:
    """The arm moves the metric in `direction` (+1 up, -1 down) by more than T_MIN standard errors."""
    mean, t, n = paired_t(finals, metric, arm)
    base = float(finals.loc[finals["scenario"] == "baseline", metric].mean())
    side = "above" if direction > 0 else "below"
    assert direction * t > T_MIN, (
        f"{arm} vs baseline, {metric}: mean paired difference {mean:+.4g} ({mean / base:+.1%} of {base:.4g}) "
        f"over {n} replicates, t = {t:+.2f}; expected {side} zero with |t| > {T_MIN}"
    )
    return mean


def test_stigma_campaign_lowers_stigma_and_reduce_isolation_lowers_loneliness() -> None:
    """Measured over root seeds 4-15 (12 replicates of 1,000 people, 3 years after 1 of burn-in):
    stigma_campaign lowers mean_stigma by 6.3-6.5%, t = -79 to -120; reduce_isolation lowers
    mean_loneliness by 7.5-10.2%, t = -9.8 to -27; high_isolation raises it by 23-26%, t = 19-47.
    About 5 s on two workers."""
    df = run_replicates(
        ["baseline", "stigma_campaign", "reduce_isolation", "high_isolation"],
        replicates=12,
        years=3,
        population=1000,
        seed=4,
        workers=2,
        overrides={"simulation.burn_in_years": 1},  # settle ties first: unsettled runs are noisy
    )
    finals = final_year_means(df)
    assert_paired_effect(finals, "mean_stigma", "stigma_campaign", -1)
    assert_paired_effect(finals, "mean_loneliness", "reduce_isolation", -1)
    assert_paired_effect(finals, "mean_loneliness", "high_isolation", +1)


NEUTRAL_MOUD = """
name = "neutral_moud"
description = "expand_moud with a capacity multiplier of 1: an intervention that changes nothing"
extends = "baseline"

[[interventions]]
kind = "expand_moud"
start_year = 1
ramp_years = 1
amount = 1.0
"""


def test_expand_moud_raises_coverage_where_capacity_binds(tmp_path: Path) -> None:
    """Doubling the slots where they bind about doubles coverage; the same intervention with a
    multiplier of 1 moves it by no more than chance.

    Measured over root seeds 2-13 (10 replicates of 2,000 people, 3 years, 150 slots per 100k =
    3 slots): expand_moud raises coverage from 0.068-0.077 by a factor 1.82-2.10, t = 14.6-20.5; the
    neutral arm's mean difference is at most 8% of expand_moud's (|t| <= 3.7). The baseline keeps a
    waitlist of 3.3-5.2 people. About 3 s on two workers."""
    scarce = {"treatment.capacity_per_100k": 150, **FAST}  # few slots, so doubling them matters
    neutral = tmp_path / "neutral_moud.toml"
    neutral.write_text(NEUTRAL_MOUD)
    df = run_replicates(
        ["baseline", load_scenario(neutral), "expand_moud"],
        replicates=10,
        years=3,
        population=2000,
        seed=2,
        workers=2,
        overrides=scarce,
    )
    finals = final_year_means(df)
    base = finals[finals["scenario"] == "baseline"]
    assert base["waitlist"].mean() > 1  # capacity binds in the baseline: people wait for a slot
    gain = assert_paired_effect(finals, "treatment_coverage", "expand_moud", +1)
    ratio = 1 + gain / base["treatment_coverage"].mean()
    assert 1.5 < ratio < 2.5, f"doubling binding capacity multiplied coverage by {ratio:.2f}"
    neutral_gain, _, _ = paired_t(finals, "treatment_coverage", "neutral_moud")
    assert abs(neutral_gain) < 0.2 * gain, f"a multiplier of 1 moved coverage by {neutral_gain:+.4g} (2x: {gain:+.4g})"


# -- streaming, bounded memory and faults ---------------------------------------------------------


def test_each_replicate_is_on_disk_before_it_counts_as_done(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, len(list((tmp_path / "parts").glob("*.parquet")))))

    result = run_experiment(["baseline"], replicates=3, seed=1, workers=1, out_dir=tmp_path, progress=progress, **SMALL)
    assert seen == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert result.frames == []  # nothing held in memory beyond the final-year means
    assert len(result.finals) == 3


class CountingExecutor(cf.Executor):
    """Records how many replicates were ever in flight at once (a submission is a batch of replicates
    sharing a burn-in). It finishes the oldest submission as soon as ``fill`` are waiting, and
    otherwise only when nothing was submitted for ``idle_s`` (so a drain that waits is not stuck)."""

    def __init__(self, fill: int, idle_s: float = 0.5) -> None:
        import threading

        self.pending: list[tuple[cf.Future, list]] = []
        self.most_in_flight = 0
        self.fill = fill
        self.lock = threading.RLock()
        self.last_submit = time.monotonic()
        self.done = False

        def idle() -> None:
            while not self.done:
                time.sleep(idle_s / 5)
                with self.lock:
                    if self.pending and time.monotonic() - self.last_submit > idle_s:
                        self.finish_oldest()
                        self.last_submit = time.monotonic()

        threading.Thread(target=idle, daemon=True).start()

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        fut: cf.Future = cf.Future()
        with self.lock:
            self.last_submit = time.monotonic()
            self.pending.append((fut, args[0]))
            self.most_in_flight = max(self.most_in_flight, sum(len(batch) for _, batch in self.pending))
            if len(self.pending) >= self.fill:
                self.finish_oldest()
        return fut

    def finish_oldest(self) -> None:
        done, batch = self.pending.pop(0)
        done.set_result([ex.ReplicateOutcome(t.scenario.name, t.replicate, t.seed, 0.0, error="stub") for t in batch])


def test_work_in_flight_is_bounded_by_the_window() -> None:
    executor = CountingExecutor(fill=5, idle_s=0.02)  # finishes at once only if the window (4) is exceeded
    scenario = load_scenario("baseline")
    todo = [ex.ReplicateTask(scenario, r, r, 1.0) for r in range(40)]  # no burn-in to share: batches of one
    recorded = []
    ex._drain(executor, 4, todo, lambda outcome, task: recorded.append(task.replicate))
    executor.done = True
    assert sorted(recorded) == list(range(40))
    assert 2 <= executor.most_in_flight <= 4  # never more than the window


def test_batches_larger_than_the_window_still_keep_every_worker_busy() -> None:
    """Five arms share each burn-in: a batch is larger than the window (twice the workers), yet two
    batches per worker are in flight, one running and one waiting (one at a time would leave a worker
    idle while this process records the last)."""
    executor = CountingExecutor(fill=4, idle_s=1.0)
    arms = [load_scenario(n) for n in ("baseline", "naloxone", "expand_moud", "cut_moud", "combined")]
    todo = [ex.ReplicateTask(s, r, r, 1.0) for r in range(6) for s in arms]
    recorded = []
    ex._drain(executor, 4, todo, lambda outcome, task: recorded.append(task))
    executor.done = True
    assert len(recorded) == 30
    assert executor.most_in_flight == 20  # four batches of five: two per worker


def test_a_failing_replicate_is_reported_and_the_others_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAIL_HOOK_ENV, "stigma_campaign:1")
    result = run_experiment(["baseline", "stigma_campaign"], replicates=2, seed=3, workers=1, out_dir=tmp_path, **SMALL)
    (failure,) = result.failures
    assert (failure.scenario, failure.replicate, failure.seed) == (
        "stigma_campaign",
        1,
        replicate_seeds(3, 2)[1],
    )
    assert "injected failure" in failure.error
    series = pd.read_parquet(tmp_path / "timeseries.parquet")
    assert sorted(set(zip(series["scenario"], series["replicate"], strict=True))) == [
        ("baseline", 0),
        ("baseline", 1),
        ("stigma_campaign", 0),
    ]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["failures"][0]["seed"] == failure.seed
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert set(summary.loc[summary["scenario"] == "stigma_campaign", "n"]) == {1}

    with pytest.raises(ReplicatesFailed) as err:
        run_replicates(["baseline", "stigma_campaign"], replicates=2, seed=3, workers=1, **SMALL)
    assert "stigma_campaign replicate 1" in str(err.value)
    assert len(err.value.frame.groupby(["scenario", "replicate"])) == 3

    # Resume re-runs only what is missing, and ends where an uninterrupted run would.
    monkeypatch.delenv(FAIL_HOOK_ENV)
    calls: list[tuple[int, int]] = []
    resumed = run_experiment(
        ["baseline", "stigma_campaign"],
        replicates=2,
        seed=3,
        workers=1,
        out_dir=tmp_path,
        resume=True,
        progress=lambda d, t: calls.append((d, t)),
        **SMALL,
    )
    assert resumed.resumed == 3 and calls == [(3, 4), (4, 4)]
    fresh = run_replicates(["baseline", "stigma_campaign"], replicates=2, seed=3, workers=1, **SMALL)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "timeseries.parquet"), fresh, check_exact=True)


def test_interrupt_keeps_finished_replicates_and_resume_finishes(tmp_path: Path) -> None:
    def interrupt_after_two(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt  # as Ctrl-C would, while the run is in progress

    result = run_experiment(
        ["baseline"],
        replicates=4,
        seed=9,
        workers=1,
        out_dir=tmp_path,
        progress=interrupt_after_two,
        **SMALL,
    )
    assert result.interrupted and len(result.finals) == 2
    assert len(list((tmp_path / "parts").glob("*.parquet"))) == 2
    assert json.loads((tmp_path / "manifest.json").read_text())["status"] == "interrupted"
    assert not list(tmp_path.rglob("*.tmp"))

    done = run_experiment(["baseline"], replicates=4, seed=9, workers=1, out_dir=tmp_path, resume=True, **SMALL)
    assert done.ok and done.resumed == 2
    fresh = run_replicates(["baseline"], replicates=4, seed=9, workers=1, **SMALL)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "timeseries.parquet"), fresh, check_exact=True)


def test_resume_does_not_reuse_parts_from_different_settings(tmp_path: Path) -> None:
    run_experiment(["baseline"], replicates=2, seed=1, workers=1, out_dir=tmp_path, **SMALL)
    changed = run_experiment(
        ["baseline"],
        replicates=2,
        seed=1,
        workers=1,
        out_dir=tmp_path,
        resume=True,
        years=1,
        population=700,
        overrides=FAST,
    )
    assert changed.resumed == 0
    assert changed.manifest["scenarios"][0]["parameters"]["simulation"]["population"] == 700


def test_atomic_write_never_leaves_a_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old complete content")

    def fails_halfway(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        ex.atomic_write(target, fails_halfway)
    assert target.read_text() == "old complete content"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_bad_input_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="unknown scenario 'nope'"):
        run_experiment(["baseline", "nope"], replicates=1, out_dir=tmp_path, **SMALL)
    with pytest.raises(ScenarioError, match="unique"):
        run_experiment(["baseline", "baseline"], replicates=1, **SMALL)
    assert not (tmp_path / "parts").exists()


def test_an_exception_from_the_progress_callback_cancels_the_run_promptly(tmp_path: Path) -> None:
    class Cancelled(Exception):
        pass

    def cancel_after_first(done: int, total: int) -> None:
        if done >= 1:
            raise Cancelled  # how the dashboard stops a comparison the user cancelled

    with pytest.raises(Cancelled):
        run_experiment(
            ["baseline"],
            replicates=6,
            seed=2,
            workers=2,
            out_dir=tmp_path,
            progress=cancel_after_first,
            **SMALL,
        )
    assert 1 <= len(list((tmp_path / "parts").glob("*.parquet"))) < 6


# -- the burn-in once per replicate (issue 19) -------------------------------------------------------


def test_arms_started_from_one_burn_in_give_the_frames_of_arms_built_afresh():
    """Every shipped scenario, started from a copy of one burned-in model (ex.run_batch), gives the
    frame that building it afresh with its interventions (Scenario.build_model) gives, step for step."""
    from oudsim.scenarios import list_scenarios

    shipped = [
        s.with_overrides({"simulation.population": 1_500, "simulation.burn_in_years": 2}) for s in list_scenarios()
    ]
    assert len(shipped) >= 10
    tasks = [ex.ReplicateTask(s, 0, 77, 2.0) for s in shipped]
    assert len(ex.batches(tasks)) == 1  # interventions only: one burn-in for them all
    # every shipped intervention ramps in from year 1: the arms share that year's steps as well
    assert min(t.quiet_steps for t in tasks) == 52 and max(t.quiet_steps for t in tasks) == tasks[0].steps
    outcomes = ex.run_batch(tasks)
    for task, outcome in zip(tasks, outcomes, strict=True):
        assert outcome.error is None, outcome.traceback
        fresh = task.scenario.build_model(rng=task.seed)
        fresh.run_for(task.steps)
        assert outcome.frame.drop(columns=["scenario", "replicate", "seed"]).equals(fresh.metrics_frame()), task
    differs = {
        o.scenario for o in outcomes if not o.frame[list(METRIC_NAMES)].equals(outcomes[0].frame[list(METRIC_NAMES)])
    }
    assert len(differs) >= len(shipped) - 2  # the arms do differ (their interventions act)


def test_sharing_the_burn_in_changes_no_byte_of_the_outputs(tmp_path):
    args = dict(replicates=3, years=1.0, population=600, overrides={"simulation.burn_in_years": 1}, workers=2)
    names = ["baseline", "expand_moud", "naloxone"]
    shared = ex.run_experiment(names, out_dir=tmp_path / "shared", **args)
    apart = ex.run_experiment(names, out_dir=tmp_path / "apart", share_burn_in=False, **args)
    assert shared.ok and apart.ok
    for name in ("timeseries.parquet", "summary.csv", "replicates.csv"):
        assert (tmp_path / "shared" / name).read_bytes() == (tmp_path / "apart" / name).read_bytes(), name
    assert shared.manifest["options"]["share_burn_in"] and not apart.manifest["options"]["share_burn_in"]
