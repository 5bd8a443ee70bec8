"""The CLI as a user runs it: a subprocess per command, every output file read back."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest

from oudsim.model.experiments import FAIL_HOOK_ENV, compare, final_year_means, replicate_seeds, summarise
from oudsim.model.metrics import METRIC_NAMES

OUDSIM = str(Path(sys.executable).with_name("oudsim"))
SMALL = ["-n", "2", "-y", "1", "-p", "500", "--seed", "3", "--set", "simulation.burn_in_years=0.5"]


def oudsim(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [OUDSIM, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_run_compare_report_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "results"
    ran = oudsim("run", "baseline", "expand_moud", *SMALL, "-w", "2", "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr
    assert "oud_prevalence" in ran.stdout and "expand_moud" in ran.stdout  # the summary table
    assert "4/4" in ran.stderr  # the progress bar's final state

    # timeseries.parquet: ids and every metric, 2 paired replicates per scenario, a year of steps.
    series = pd.read_parquet(out / "timeseries.parquet")
    assert list(series.columns) == ["scenario", "replicate", "seed", "step", "year", *METRIC_NAMES]
    assert list(dict.fromkeys(series["scenario"])) == ["baseline", "expand_moud"]
    per_run = series.groupby(["scenario", "replicate"])
    assert per_run.size().tolist() == [53] * 4
    assert per_run["seed"].first().unstack("scenario")["baseline"].tolist() == replicate_seeds(3, 2)
    assert per_run["seed"].first().unstack("scenario").nunique(axis=1).eq(1).all()

    # summary.csv: final-year mean and 2.5/97.5 percentiles, recomputable from the time series.
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["scenario", "metric", "mean", "lo", "hi", "n"]
    assert len(summary) == 2 * len(METRIC_NAMES) and set(summary["n"]) == {2}
    pd.testing.assert_frame_equal(summary, summarise(series), check_exact=False, rtol=1e-12)
    assert (summary["lo"] <= summary["mean"]).all() and (summary["mean"] <= summary["hi"]).all()

    replicates = pd.read_csv(out / "replicates.csv")
    pd.testing.assert_frame_equal(replicates, final_year_means(series), check_exact=False, rtol=1e-12)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["version"] == version("oudsim")
    assert "git_commit" in manifest
    assert manifest["seeds"]["root"] == 3 and manifest["seeds"]["replicates"] == replicate_seeds(3, 2)
    assert [s["name"] for s in manifest["scenarios"]] == ["baseline", "expand_moud"]
    assert all(s["parameters"]["simulation"]["population"] == 500 for s in manifest["scenarios"])
    assert manifest["scenarios"][1]["interventions"][0]["kind"] == "expand_moud"
    assert manifest["timings"]["wall_seconds"] > 0 and len(manifest["timings"]["replicate_seconds"]) == 4
    assert manifest["replicates"] == {"total": 4, "finished": 4, "resumed": 0, "failed": 0}

    # compare: paired differences from the replicates already on disk.
    compared = oudsim("compare", "baseline", "expand_moud", "--from", str(out))
    assert compared.returncode == 0, compared.stderr
    comparison = pd.read_csv(out / "comparison.csv")
    assert list(comparison.columns) == [
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
    ]
    expected = compare(final_year_means(series), "baseline", ["expand_moud"])
    pd.testing.assert_frame_equal(comparison, expected, check_exact=False, rtol=1e-9)
    assert "expand_moud − baseline" in compared.stdout

    # report: a PNG per metric and an HTML page that shows them with the tables.
    reported = oudsim("report", str(out))
    assert reported.returncode == 0, reported.stderr
    page = (out / "report.html").read_text()
    images = re.findall(r"<img src='([^']+)'", page)
    assert len([i for i in images if i.startswith("report/")]) == len(METRIC_NAMES)
    assert "ce_plane.png" in images  # compare wrote the cost-effectiveness plane, shown with its table
    for src in images:
        assert (out / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Difference from baseline" in page and "expand_moud" in page
    assert all(m in page for m in METRIC_NAMES)
    assert not list(out.rglob("*.tmp"))


def test_a_failing_replicate_exits_1_names_it_and_keeps_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "results"
    ran = oudsim(
        "run",
        "baseline",
        "naloxone",
        *SMALL,
        "-w",
        "2",
        "--out",
        str(out),
        env={FAIL_HOOK_ENV: "naloxone:0"},
    )
    assert ran.returncode == 1
    seed = replicate_seeds(3, 2)[0]
    assert f"naloxone replicate 0 (seed {seed})" in ran.stderr and "injected failure" in ran.stderr
    assert "Traceback" not in ran.stderr
    series = pd.read_parquet(out / "timeseries.parquet")
    assert sorted(set(zip(series["scenario"], series["replicate"], strict=True))) == [
        ("baseline", 0),
        ("baseline", 1),
        ("naloxone", 1),
    ]
    assert json.loads((out / "manifest.json").read_text())["failures"][0]["seed"] == seed

    resumed = oudsim("run", "baseline", "naloxone", *SMALL, "-w", "1", "--out", str(out), "--resume")
    assert resumed.returncode == 0 and "Resumed: 3" in resumed.stderr
    assert pd.read_parquet(out / "timeseries.parquet").groupby(["scenario", "replicate"]).ngroups == 4


@pytest.mark.slow
def test_a_worker_process_that_dies_is_found_and_the_others_finish(tmp_path: Path) -> None:
    out = tmp_path / "results"
    args = ["run", "baseline", "-n", "5", "-y", "0.25", "-p", "200", "-w", "2", "--out", str(out)]
    args += ["--set", "simulation.burn_in_years=0"]
    # Replicate 2's worker process exits, as an out-of-memory kill would.
    ran = oudsim(*args, env={FAIL_HOOK_ENV: "baseline:2:exit"})
    assert ran.returncode == 1, ran.stderr
    assert "baseline replicate 2" in ran.stderr and "worker process died" in ran.stderr
    assert "Traceback" not in ran.stderr
    series = pd.read_parquet(out / "timeseries.parquet")
    assert sorted(series["replicate"].unique()) == [0, 1, 3, 4]  # the others all finished
    resumed = oudsim(*args, "--resume")
    assert resumed.returncode == 0 and "Resumed: 4" in resumed.stderr


@pytest.mark.slow
def test_a_replicate_that_kills_its_worker_is_found_among_the_arms_sharing_its_burn_in(tmp_path: Path) -> None:
    """The arms of a replicate run as one batch (one burn-in): the batch dies with the worker, is run
    again alone, then arm by arm, so the culprit is named and its batch-mates finish."""
    out = tmp_path / "results"
    args = ["run", "baseline", "naloxone", "-n", "2", "-y", "0.25", "-p", "200", "-w", "2", "--out", str(out)]
    ran = oudsim(*args, "--set", "simulation.burn_in_years=0", env={FAIL_HOOK_ENV: "naloxone:1:exit"})
    assert ran.returncode == 1, ran.stderr
    assert "naloxone replicate 1" in ran.stderr and "worker process died" in ran.stderr
    series = pd.read_parquet(out / "timeseries.parquet")
    finished = sorted(set(zip(series["scenario"], series["replicate"], strict=True)))
    assert finished == [("baseline", 0), ("baseline", 1), ("naloxone", 0)]


@pytest.mark.slow
def test_ctrl_c_keeps_finished_replicates_and_resume_completes(tmp_path: Path) -> None:
    out = tmp_path / "results"
    args = [
        "run",
        "baseline",
        "-n",
        "6",
        "-y",
        "3",
        "-p",
        "2000",
        "--set",
        "simulation.burn_in_years=1",
        "-w",
        "2",
        "--out",
        str(out),
    ]
    # A new session, so the signal goes to the whole process group as a terminal's Ctrl-C does.
    proc = subprocess.Popen(
        [OUDSIM, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    deadline = time.monotonic() + 120
    while not list((out / "parts").glob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stderr
    kept = sorted((out / "parts").glob("*.parquet"))
    assert 1 <= len(kept) < 6
    for part in kept:  # every file under a final name is complete
        assert len(pd.read_parquet(part)) == 3 * 52 + 1
    assert not list(out.rglob("*.tmp"))
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"

    again = oudsim(*args, "--resume")
    assert again.returncode == 0, again.stderr
    assert f"Resumed: {len(kept)}" in again.stderr
    series = pd.read_parquet(out / "timeseries.parquet")
    assert sorted(series["replicate"].unique()) == list(range(6))
    assert json.loads((out / "manifest.json").read_text())["replicates"]["resumed"] == len(kept)


def test_exit_after_interrupt_does_not_wait_for_a_stuck_thread() -> None:
    # What hung once in CI: after Ctrl-C the summary printed, then interpreter exit waited forever
    # on a pool's manager thread. A stand-in that never ends must not keep the process alive.
    code = (
        "import threading, time\n"
        "from oudsim.model.console import exit_interrupted\n"
        "threading.Thread(target=time.sleep, args=(3600,)).start()\n"
        "print('summary', flush=True)\n"
        "exit_interrupted()\n"
    )
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout == "summary\n"
    assert time.monotonic() - started < 30
