"""Sensitivity analysis: bounds follow the schema, Morris ranks a parameter with a strong effect
above one that provably cannot move the metric, and the files (CSV, PNG) are written."""

from __future__ import annotations

import pandas as pd
import pytest

from oudsim.model.parameters import ParameterError, field_info
from oudsim.model.sensitivity import bounds_for, parse_parameter, run_sensitivity

# network.powerlaw_exponent only shapes the scale-free generator; the baseline network is
# small-world, so it cannot affect any output (and consumes no random numbers).
NULL = "network.powerlaw_exponent"
TINY = dict(population=400, years=0.5, burn_in_years=0.5, seed=3)


def test_default_bounds_are_a_fraction_of_the_default_clipped_to_the_schema():
    p = bounds_for("use.initiation_rate", 0.5)
    d = field_info("use.initiation_rate")["default"]
    assert (p.lo, p.hi) == pytest.approx((0.5 * d, 1.5 * d))
    # overdose.naloxone_efficacy defaults to 0.9 and may not exceed 1
    p = bounds_for("overdose.naloxone_efficacy", 0.5)
    assert p.hi == 1.0 and p.lo == pytest.approx(0.45)
    # a vector moves as a whole: its bounds are a scale factor, clipped so every item stays in range
    p = bounds_for("demography.ace_shares", 0.5)
    assert p.is_vector and p.lo == pytest.approx(0.5) and p.hi == pytest.approx(1.5)
    # integers get whole-number bounds
    p = bounds_for("social.isolated_max_ties", 0.5)
    assert (p.lo, p.hi) == (0, 2)


def test_bad_parameters_are_refused_by_name():
    with pytest.raises(ParameterError, match="did you mean"):
        parse_parameter("use.initation_rate")
    with pytest.raises(ParameterError, match="defaults to 0"):
        parse_parameter("social.peer_support_rate")
    assert parse_parameter("social.peer_support_rate=0:2").hi == 2
    with pytest.raises(ParameterError, match="allowed range"):
        parse_parameter("overdose.fatality=0.5:1.5")
    with pytest.raises(ParameterError, match="not numeric"):
        parse_parameter("network.kind")
    with pytest.raises(ParameterError, match="unknown metric"):
        run_sensitivity(["use.initiation_rate", NULL], "oud_prevalance", **TINY)
    with pytest.raises(ParameterError, match="method"):
        run_sensitivity(["use.initiation_rate", NULL], method="fast", **TINY)
    with pytest.raises(ParameterError, match="at least two"):
        run_sensitivity(["use.initiation_rate"], **TINY)


def test_morris_ranks_a_strong_parameter_above_one_with_no_effect(tmp_path):
    res = run_sensitivity(
        [NULL, "use.initiation_rate", "social.isolated_max_ties"],
        "misuse_prevalence",
        trajectories=3,
        out=tmp_path,
        **TINY,
    )
    idx = res.indices.set_index("parameter")
    assert res.ranking[0] == "use.initiation_rate"
    assert idx.loc["use.initiation_rate", "mu_star"] > 0
    # parameters that cannot move the metric have exactly zero effect (common random numbers)
    assert idx.loc[NULL, "mu_star"] == 0 and idx.loc["social.isolated_max_ties", "mu_star"] == 0
    assert list(res.indices["rank"]) == [1, 2, 3]
    # files: indices, samples (3 trajectories x 4 points), a PNG
    written = pd.read_csv(res.paths["indices"])
    assert list(written["parameter"]) == res.ranking
    assert {"mu_star", "mu_star_conf", "mu", "sigma", "lo", "hi"} <= set(written.columns)
    assert len(pd.read_csv(res.paths["samples"])) == 12
    assert res.paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "use.initiation_rate" in res.format()


def test_sobol_on_request(tmp_path):
    res = run_sensitivity(
        ["use.initiation_rate", NULL],
        "misuse_prevalence",
        method="sobol",
        sobol_n=4,
        out=tmp_path,
        **TINY,
    )
    assert len(res.samples) == 4 * (2 + 2)
    idx = res.indices.set_index("parameter")
    assert {"S1", "S1_conf", "ST", "ST_conf"} <= set(idx.columns)
    assert res.ranking[0] == "use.initiation_rate" and idx.loc[NULL, "ST"] == 0
    assert res.paths["plot"].exists()


def test_one_design_serves_several_metrics():
    from oudsim.model.sensitivity import run_sensitivity_metrics

    res = run_sensitivity_metrics(
        ["use.initiation_rate", NULL],
        ["misuse_prevalence", "mh_prevalence"],
        trajectories=2,
        **TINY,
    )
    a, b = res["misuse_prevalence"], res["mh_prevalence"]
    assert a.samples.drop(columns="misuse_prevalence").equals(b.samples.drop(columns="mh_prevalence"))
    assert a.indices.set_index("parameter").loc[NULL, "mu_star"] == 0


# -- the `oudsim sensitivity` command -----------------------------------------------------------


def _app():
    import typer

    from oudsim.model.cli_analysis import register

    app = typer.Typer()
    app.command("noop")(lambda: None)
    return register(app)


def test_sensitivity_command_prints_ranking_and_writes_files(tmp_path):
    from typer.testing import CliRunner

    args = [
        "sensitivity",
        "use.initiation_rate",
        f"{NULL}=2.1:4",
        "-m",
        "misuse_prevalence",
        "-r",
        "2",
        "-p",
        "300",
        "-y",
        "0.3",
        "--burn-in",
        "0.3",
        "-w",
        "1",
        "-o",
        str(tmp_path),
    ]
    r = CliRunner().invoke(_app(), args)
    assert r.exit_code == 0, r.output
    assert "Morris ranking of misuse_prevalence" in r.output
    assert r.output.index("use.initiation_rate") < r.output.index(NULL)
    idx = pd.read_csv(tmp_path / "sensitivity_misuse_prevalence_morris.csv")
    assert list(idx["parameter"]) == ["use.initiation_rate", NULL]
    assert (tmp_path / "sensitivity_misuse_prevalence_morris_ranking.png").exists()
    assert "sensitivity" in (tmp_path / "sensitivity_misuse_prevalence_morris_command.txt").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["use.initiation_rate", "use.progresion_rate"], "did you mean"),
        (["use.initiation_rate", NULL, "-m", "oud_prevalance"], "did you mean 'oud_prevalence'"),
        (["use.initiation_rate", NULL, "--method", "fast"], "--method"),
        (["use.initiation_rate", "overdose.fatality=0:2"], "allowed range"),
        (["use.initiation_rate", "social.peer_support_rate"], "defaults to 0"),
        (["use.initiation_rate", NULL, "--scenario", "naloxone"], "interventions"),
    ],
)
def test_sensitivity_command_bad_input_exits_2(tmp_path, args, message):
    from typer.testing import CliRunner

    r = CliRunner().invoke(_app(), ["sensitivity", *args, "-o", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_groups_expand_to_free_parameters_and_mechanism_ratios():
    from oudsim.model.calibration import FREE_PARAMETERS
    from oudsim.model.sensitivity import MECHANISM_RATIOS, expand_groups, parse_parameter

    free = [p.name for p in FREE_PARAMETERS]
    both = expand_groups(["free", "mechanisms"])
    assert both[: len(free)] == free and set(MECHANISM_RATIOS) <= set(both)
    assert len(both) == len(set(both))  # each once
    assert expand_groups(["use.mh_hr", "mechanisms"]).count("use.mh_hr") == 1
    for name in MECHANISM_RATIOS:  # every mechanism ratio is a real parameter with usable bounds
        p = parse_parameter(name)
        assert p.lo < p.hi, name
