"""Version information: ``oudsim --version``, every command's manifest, CITATION.cff and the changelog
all name the version that pyproject.toml declares."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from typer.testing import CliRunner

from oudsim import __version__, versions
from oudsim.model.calibration import FREE_PARAMETERS
from oudsim.model.cli import app
from oudsim.model.parameters import Parameters
from oudsim.model.posterior import Posterior

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
TINY = ["-p", "200", "-y", "0.2", "-n", "2", "-w", "1", "--seed", "3", "--set", "simulation.burn_in_years=0"]
runner = CliRunner()


def invoke(*args: str):  # noqa: ANN201
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_the_installed_version_is_the_declared_one():
    assert __version__ == VERSION
    assert versions()["oudsim"] == VERSION and set(versions()) == {"oudsim", "python", "numpy", "numba"}


def test_version_option_prints_the_version_and_exits_0():
    out = invoke("--version").output
    assert re.match(rf"oudsim {re.escape(VERSION)} \(Python 3\.\d+\.\d+, numpy [\d.]+, numba [\d.]+\)\n$", out), out
    assert "Usage" not in out  # the option answers alone, not with the help page


def _manifest_version(path: Path) -> str:
    about = json.loads(path.read_text())
    assert about["package"] == "oudsim"
    return about["version"]


def test_run_compare_and_sweep_manifests_carry_the_version(tmp_path):
    invoke("run", "baseline", *TINY, "-o", str(tmp_path / "run"))
    invoke("compare", "baseline", "naloxone", *TINY, "-o", str(tmp_path / "compare"))
    invoke("sweep", "baseline", "--grid", "treatment.seek_rate=1,2", *TINY, "-o", str(tmp_path / "sweep"))
    for folder in ("run", "compare", "sweep"):
        assert _manifest_version(tmp_path / folder / "manifest.json") == VERSION, folder


def test_psa_manifest_carries_the_version(tmp_path):
    rng = np.random.default_rng(1)
    defaults = Parameters()
    rows = [
        {"step": i, **{p.name: p.value_in(defaults) * rng.uniform(0.95, 1.05) for p in FREE_PARAMETERS}}
        for i in range(2)
    ]
    posterior = Posterior(pd.DataFrame(rows).assign(accepted=True, loss=0.0), {"method": "test"}).save(
        tmp_path / "posterior.parquet"
    )
    psa = ["psa", "baseline", "naloxone", "--posterior", str(posterior), "--draws", "2"]
    invoke(*psa, *[a for a in TINY if a not in ("-n", "2")], "-o", str(tmp_path / "psa"))
    assert _manifest_version(tmp_path / "psa" / "manifest.json") == VERSION


def test_calibrate_and_sensitivity_write_a_manifest_with_the_version(tmp_path):
    tiny = ["-p", "200", "-y", "0.2", "--burn-in", "0", "-w", "1", "-n", "1"]
    invoke("calibrate", "--trials", "1", *tiny, "-o", str(tmp_path / "cal"))
    about = json.loads((tmp_path / "cal" / "manifest.json").read_text())
    assert about["version"] == VERSION and about["command"].startswith("oudsim calibrate ")
    # the options as the command was given them, read from its own context (in-process, as here)
    assert "--trials 1" in about["command"] and "--population 200" in about["command"]
    assert about["settings"]["population"] == 200 and about["numba"] == versions()["numba"]

    invoke(
        "sensitivity",
        "use.initiation_rate",
        "use.relapse_rate",
        "-r",
        "2",
        "-m",
        "oud_prevalence",
        *tiny,
        "-o",
        str(tmp_path / "sa"),
    )
    about = json.loads((tmp_path / "sa" / "sensitivity_oud_prevalence_morris_manifest.json").read_text())
    assert about["version"] == VERSION and about["metric"] == "oud_prevalence" and about["method"] == "morris"
    command = (tmp_path / "sa" / "sensitivity_oud_prevalence_morris_command.txt").read_text()
    assert command.startswith("oudsim sensitivity ") and "--metric oud_prevalence" in command, command


def test_citation_file_is_valid_cff_with_this_version():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert cff["version"] == VERSION
    assert cff["license"] == "MIT"
    assert cff["title"] and cff["message"] and cff["abstract"] and cff["keywords"]
    assert cff["authors"] and all("name" in a or "family-names" in a for a in cff["authors"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(cff["date-released"]))


def test_licence_file_is_the_declared_mit_licence():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    text = (ROOT / "LICENSE").read_text()
    assert declared == "MIT" and text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text and "WITHOUT WARRANTY OF ANY KIND" in text


def test_changelog_starts_with_this_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert releases and releases[0] in (VERSION, "Unreleased")
    assert VERSION in releases
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert f"## [{VERSION}] - {cff['date-released']}" in text  # the release the citation names
