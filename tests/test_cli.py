"""The oudsim command line in-process: listing, validation, bad input (exit 2), sweeps, Dask."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from oudsim.model import cli
from oudsim.model.cli import _parse_value, app
from oudsim.model.experiments import run_replicates
from oudsim.scenarios import list_scenarios

runner = CliRunner()
FAST = ["--set", "simulation.burn_in_years=0"]


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as on a wide terminal, whatever width the test runner reports."""
    monkeypatch.setattr(cli.out_console, "width", 600)
    monkeypatch.setattr(cli.err_console, "width", 600)


def invoke(*args: str):  # noqa: ANN201
    return runner.invoke(app, list(args))


def assert_clean_error(result, *needles: str) -> None:  # noqa: ANN001
    """Exit 2, one message naming what is wrong, and no traceback."""
    assert result.exit_code == 2, result.output
    text = result.output
    assert "Traceback" not in text
    assert text.strip().startswith("error:") or "Usage:" in text
    for needle in needles:
        assert needle in text, text


def test_scenarios_lists_every_shipped_scenario_with_its_description() -> None:
    result = invoke("scenarios")
    assert result.exit_code == 0
    flat = " ".join(result.stdout.split())
    for s in list_scenarios():
        assert s.name in flat
        assert " ".join(s.description.split()) in flat


def test_validate_accepts_a_good_file_and_refuses_bad_ones(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('name = "mine"\ndescription = "d"\nextends = "naloxone"\n[parameters]\ncapacity = 400\n')
    result = invoke("validate", str(good))
    assert result.exit_code == 0 and "ok" in result.stdout and "'mine'" in result.stdout

    syntax = tmp_path / "syntax.toml"
    syntax.write_text('name = "x"\n[parameters]\n"treatment.seek_rate" = = 2\n')
    assert_clean_error(invoke("validate", str(syntax)), str(syntax), "line 3")

    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[parameters.overdose]\nnaloxone_coverag = 0.5\n")
    assert_clean_error(
        invoke("validate", str(unknown)),
        "'overdose.naloxone_coverag'",
        "did you mean 'overdose.naloxone_coverage'",
    )

    out_of_range = tmp_path / "range.toml"
    out_of_range.write_text('[parameters]\n"social.isolation_multiplier" = 25\n')
    assert_clean_error(
        invoke("validate", str(out_of_range)),
        "social.isolation_multiplier = 25",
        "allowed range [0, 20]",
    )

    wrong_type = tmp_path / "type.toml"
    wrong_type.write_text('[parameters]\n"simulation.population" = "many"\n')
    assert_clean_error(invoke("validate", str(wrong_type)), "simulation.population = 'many'", "allowed range")

    assert_clean_error(invoke("validate", str(tmp_path / "missing.toml")), "no such scenario file")


def test_run_refuses_bad_input_with_one_clear_message(tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    assert_clean_error(
        invoke("run", "basline", "--out", out),
        "unknown scenario 'basline'",
        "baseline",
        "stigma_campaign",
        "high_isolation",
    )
    assert_clean_error(
        invoke("run", "baseline", "--set", "treatment.seek_rat=1", "--out", out),
        "did you mean 'treatment.seek_rate'",
    )
    assert_clean_error(
        invoke("run", "baseline", "--set", "overdose.naloxone_coverage=1.5", "--out", out),
        "overdose.naloxone_coverage = 1.5",
        "allowed range [0, 1]",
    )
    assert_clean_error(invoke("run", "baseline", "--set", "no_equals_sign", "--out", out), "dotted.name=value")
    assert_clean_error(invoke("run", "baseline", "--replicates", "0", "--out", out))
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    assert_clean_error(
        invoke("run", "baseline", "-n", "1", "-y", "0", "-p", "100", "-w", "1", "--out", str(a_file)),
        str(a_file),
    )
    assert not Path(out).exists()  # nothing ran, nothing written


def test_set_values_are_read_as_toml() -> None:
    assert _parse_value("2") == 2 and _parse_value("0.5") == 0.5 and _parse_value("true") is True
    assert _parse_value("[0.3, 0.5, 0.2]") == [0.3, 0.5, 0.2]
    assert _parse_value("scale_free") == "scale_free"  # a bare word stays a string


def test_run_prints_the_summary_and_honours_set(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke(
        "run",
        "baseline",
        "-n",
        "2",
        "-y",
        "0.5",
        "-p",
        "300",
        "-w",
        "1",
        "--out",
        str(out),
        *FAST,
        "--set",
        "treatment.seek_rate=2.5",
    )
    assert result.exit_code == 0, result.output
    for metric in ("oud_prevalence", "overdose_death_rate", "mean_degree"):
        assert metric in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scenarios"][0]["parameters"]["treatment"]["seek_rate"] == 2.5
    assert manifest["options"]["overrides"] == {
        "simulation.burn_in_years": 0,
        "treatment.seek_rate": 2.5,
    }


def test_sweep_runs_every_combination_with_its_values(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    result = invoke(
        "sweep",
        "baseline",
        "--grid",
        "treatment.capacity_per_100k=100,400",
        "--grid",
        "stigma=0.3,0.6",
        "-n",
        "1",
        "-y",
        "0.25",
        "-p",
        "300",
        "-w",
        "1",
        "--out",
        str(out),
        *FAST,
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    got = {
        (
            s["parameters"]["treatment"]["capacity_per_100k"],
            s["parameters"]["stigma"]["initial_mean"],
        )
        for s in manifest["scenarios"]
    }
    assert got == {(100, 0.3), (100, 0.6), (400, 0.3), (400, 0.6)}
    sweep = pd.read_csv(out / "sweep.csv")
    assert {"treatment.capacity_per_100k", "stigma", "metric", "mean", "lo", "hi", "n"} <= set(sweep.columns)
    assert sweep["scenario"].nunique() == 4
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["scenario"]) == set(sweep["scenario"])
    series = pd.read_parquet(out / "timeseries.parquet")
    assert series.groupby("scenario")["seed"].first().nunique() == 1  # paired across the grid
    assert_clean_error(
        invoke("sweep", "baseline", "--grid", "capacity=10,-1", "--out", str(out)),
        "treatment.capacity_per_100k = -1",
        "allowed range",
    )


def test_compare_from_a_folder_that_lacks_the_scenario(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        invoke(
            "run",
            "baseline",
            "-n",
            "1",
            "-y",
            "0.25",
            "-p",
            "200",
            "-w",
            "1",
            "--out",
            str(out),
            *FAST,
        ).exit_code
        == 0
    )
    assert_clean_error(invoke("compare", "baseline", "naloxone", "--from", str(out)), "no replicates of naloxone")
    assert_clean_error(invoke("report", str(tmp_path / "nowhere")), "no such folder")


def test_dask_local_cluster_equals_a_local_run_through_the_api_and_the_cli(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    scenarios = ["baseline", "naloxone"]
    local = run_replicates(
        scenarios,
        replicates=3,
        years=0.5,
        population=400,
        seed=5,
        workers=1,
        overrides={"simulation.burn_in_years": 0},
    )
    args = ["run", *scenarios, "-n", "3", "-y", "0.5", "-p", "400", "--seed", "5", *FAST]
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        on_dask = run_replicates(
            scenarios,
            replicates=3,
            years=0.5,
            population=400,
            seed=5,
            scheduler=cluster.scheduler_address,
            overrides={"simulation.burn_in_years": 0},
        )
        result = invoke(*args, "--scheduler", cluster.scheduler_address, "--out", str(tmp_path))
    pd.testing.assert_frame_equal(on_dask, local, check_exact=True)
    assert result.exit_code == 0, result.output
    from_cli = pd.read_parquet(tmp_path / "timeseries.parquet")
    pd.testing.assert_frame_equal(from_cli, local, check_exact=True)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["options"]["scheduler"] == cluster.scheduler_address
    assert_clean_error(
        invoke(*args, "--scheduler", "xyz://nowhere:1", "--out", str(tmp_path / "x")),
        "cannot reach the Dask scheduler",
    )
