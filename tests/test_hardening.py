"""Adversarial input (issue 17): each case once ended in a traceback or lost data; now it gets one
clear message (exit 2) naming what is wrong, or works."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from oudsim.model import cli
from oudsim.model.cli import app
from oudsim.model.experiments import ReplicateTask, read_finals, run_experiment
from oudsim.model.oud_model import OUDModel
from oudsim.model.parameters import ParameterError, Parameters
from oudsim.scenarios import ScenarioError, load_scenario

runner = CliRunner()
TINY = ["-p", "200", "-n", "2", "-y", "0.2", "--set", "simulation.burn_in_years=0", "-w", "1"]


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.out_console, "width", 600)
    monkeypatch.setattr(cli.err_console, "width", 600)


def clean_error(result, *needles: str) -> None:  # noqa: ANN001
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'name = "latin"\nextends = "baseline"\ndescription = "caf\xe9"\n')
    clean_error(runner.invoke(app, ["validate", str(latin)]), "latin.toml:3", "not UTF-8")
    clean_error(runner.invoke(app, ["run", str(latin), *TINY, "-o", str(tmp_path / "o")]), "not UTF-8")
    child = tmp_path / "child.toml"
    child.write_text('name = "child"\nextends = "latin.toml"\n')
    clean_error(runner.invoke(app, ["validate", str(child)]), "extends 'latin.toml'", "not UTF-8")
    clean_error(runner.invoke(app, ["scenarios", "--dir", str(tmp_path)]), "not UTF-8")
    params = tmp_path / "params.toml"
    params.write_bytes(b"[parameters]\n# \xff\n")
    with pytest.raises(ParameterError, match="params.toml:2: not UTF-8"):
        Parameters.from_file(params)


def test_tables_nested_thousands_deep_are_refused(tmp_path):
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    clean_error(runner.invoke(app, ["validate", str(deep)]), "nested too deeply")


@pytest.mark.parametrize(("name", "message"), [("", "name is empty"), ("a\x1b[31mb", "control characters")])
def test_empty_names_and_control_characters_are_refused(tmp_path, name, message):
    path = tmp_path / "s.toml"
    path.write_text(f'name = "{name.encode("unicode_escape").decode().replace(chr(92) + "x1b", chr(92) + "u001b")}"\n')
    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)


def test_a_scenario_named_NA_stays_a_name_through_compare_and_report(tmp_path):
    na = tmp_path / "na.toml"
    na.write_text('name = "NA"\nextends = "baseline"\n')
    out = tmp_path / "run"
    first = runner.invoke(app, ["compare", "baseline", str(na), *TINY, "-o", str(out)])
    assert first.exit_code == 0, first.output
    assert set(read_finals(out)["scenario"]) == {"baseline", "NA"}
    again = runner.invoke(app, ["compare", "baseline", "NA", "--from", str(out)])
    assert again.exit_code == 0, again.output
    assert runner.invoke(app, ["report", str(out), "--metric", "oud_prevalence"]).exit_code == 0


def test_a_summary_without_its_columns_is_named(tmp_path):
    run = tmp_path / "run"
    assert runner.invoke(app, ["run", "baseline", *TINY, "-o", str(run)]).exit_code == 0
    (run / "summary.csv").write_text("x,y\n1,2\n")
    clean_error(runner.invoke(app, ["report", str(run)]), "summary.csv", "no column")


def test_replicates_are_capped_before_anything_is_allocated(tmp_path):
    for n in ("100000000000000000000", "100000000"):
        result = runner.invoke(app, ["run", "baseline", "-n", n, "-o", str(tmp_path / "o")])
        assert result.exit_code == 2 and "less than or equal to 100000" in result.output
    with pytest.raises(ScenarioError, match="allowed range"):
        run_experiment(["baseline"], replicates=10**20)


def test_names_with_one_file_slug_get_their_own_part_files(tmp_path):
    a = load_scenario("baseline").with_overrides({}, name="arm/1")
    b = load_scenario("baseline").with_overrides({}, name="arm_1")
    assert ReplicateTask(a, 0, 1, 1.0).part_name != ReplicateTask(b, 0, 1, 1.0).part_name
    result = run_experiment(
        [a, b], replicates=1, years=0.1, population=200, overrides={"simulation.burn_in_years": 0}, out_dir=tmp_path
    )
    assert result.ok
    series = pd.read_parquet(tmp_path / "timeseries.parquet")
    assert series.groupby("scenario").size().to_dict() == {"arm/1": 6, "arm_1": 6}


@pytest.mark.parametrize("duration", [-1, float("nan"), 2.5, "3", True])
def test_run_for_refuses_what_mesa_would_silently_skip_or_truncate(duration):
    m = OUDModel(population=100, rng=1, burn_in_years=0)
    with pytest.raises((ValueError, TypeError), match="run_for"):
        m.run_for(duration)
    m.run_for(2)
    m.run_for(1.0)
    assert m.week == 3


def test_missing_folders_and_empty_scheduler_addresses_are_refused(tmp_path):
    clean_error(runner.invoke(app, ["scenarios", "--dir", str(tmp_path / "nowhere")]), "no such folder")
    clean_error(
        runner.invoke(app, ["run", "baseline", *TINY, "--scheduler", "", "-o", str(tmp_path / "o")]),
        "--scheduler is empty",
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("treatment.seek_rate", True, "valid number"),
        ("simulation.population", "5000", "valid integer"),
        ("simulation.population", 5000.5, "valid integer"),
    ],
)
def test_numbers_must_be_numbers(field, value, message):
    with pytest.raises(ParameterError, match=message):
        Parameters.build(**{field: value})
    assert Parameters.build(**{"treatment.seek_rate": 2}).treatment.seek_rate == 2.0  # an int is a number


def test_an_alias_and_its_dotted_name_together_are_refused():
    with pytest.raises(ParameterError, match="given twice"):
        Parameters.build(**{"isolation": 2.0, "social.isolation_multiplier": 3.0})


def test_a_model_refuses_a_dict_for_params_and_a_list_for_a_graph():
    with pytest.raises(TypeError, match="params must be a Parameters tree"):
        OUDModel(population=100, params={"treatment": {"seek_rate": 2.0}})
    with pytest.raises(TypeError, match="graph must be a networkx graph"):
        OUDModel(population=100, graph=[(0, 1)])


@pytest.mark.parametrize(
    "setting", ["simulation = { dt_weeks = 4 }", "simulation = { population = 500 }", "mean_degree = 4"]
)
def test_an_intervention_cannot_change_the_clock_the_population_or_the_network(tmp_path, setting):
    path = tmp_path / "s.toml"
    path.write_text(f'name = "s"\nextends = "baseline"\n[[interventions]]\nkind = "custom"\nset = {{ {setting} }}\n')
    clean_error(runner.invoke(app, ["validate", str(path)]), "cannot change the simulation or the network")


def test_resume_runs_again_a_part_that_is_damaged_swapped_truncated_or_garbage(tmp_path):
    args = dict(
        replicates=4, years=0.2, population=200, overrides={"simulation.burn_in_years": 0}, seed=4
    )  # fmt: skip
    clean = run_experiment(["baseline"], out_dir=tmp_path / "clean", **args)
    expected = pd.read_parquet(tmp_path / "clean" / "timeseries.parquet")
    out = tmp_path / "run"
    run_experiment(["baseline"], out_dir=out, **args)
    parts = sorted((out / "parts").glob("*.parquet"))
    assert len(parts) == 4
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Values changed inside a valid file (the checksum no longer matches) ...
    table = pq.read_table(parts[0])
    column = table.column("untreated_oud_prevalence").to_numpy().copy()
    column[3:10] = 2.1e-07
    changed = table.set_column(
        table.schema.get_field_index("untreated_oud_prevalence"), "untreated_oud_prevalence", pa.array(column)
    )
    pq.write_table(changed.replace_schema_metadata(table.schema.metadata), parts[0])
    # ... another replicate's file under this one's name, a truncated file, and garbage.
    parts[1].write_bytes(parts[2].read_bytes())
    parts[2].write_bytes(parts[2].read_bytes()[:200])
    parts[3].write_bytes(b"not parquet at all")
    with pytest.warns(UserWarning, match="4 damaged or foreign part"):
        resumed = run_experiment(["baseline"], out_dir=out, resume=True, **args)
    assert resumed.ok and resumed.resumed == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out / "timeseries.parquet"), expected, check_exact=True)
    assert clean.ok
    again = run_experiment(["baseline"], out_dir=out, resume=True, **args)
    assert again.resumed == 4  # whole parts are trusted and reused


@pytest.mark.parametrize("listener", ["mute", "http"])
def test_a_listener_that_never_answers_is_not_a_scheduler_and_does_not_hang(listener):
    """Something that accepts and never answers, or an HTTP server (a proxy's port): one message
    within the stated time, not a hang (or an attempt to allocate exabytes from an HTTP reply)."""
    import http.server
    import socket
    import threading
    import time

    from oudsim.model.experiments import connect

    pytest.importorskip("distributed")
    if listener == "mute":
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(5)
        port, stop = server.getsockname()[1], server.close
    else:
        quiet = type("Quiet", (http.server.BaseHTTPRequestHandler,), {"log_message": lambda *a: None})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), quiet)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        port = httpd.server_address[1]

        def stop() -> None:
            httpd.shutdown()
            httpd.server_close()

    t0 = time.monotonic()
    try:
        with pytest.raises(ScenarioError, match="nothing answered as a Dask scheduler"):
            connect(f"tcp://127.0.0.1:{port}", timeout="1s")
    finally:
        stop()
    assert time.monotonic() - t0 < 30


def test_a_bad_edge_list_is_bad_input_before_any_replicate_runs(tmp_path):
    edges = tmp_path / "edges.txt"
    edges.write_text("0 1\n2\n")
    out = tmp_path / "o"
    result = runner.invoke(
        app,
        [
            "run",
            "baseline",
            *TINY,
            "--set",
            "network.kind=edgelist",
            "--set",
            f"network.edgelist_path={edges}",
            "-o",
            str(out),
        ],
    )
    clean_error(result, "edges.txt, line 2", "expected two node names")
    assert not (out / "parts").exists() or not list((out / "parts").iterdir())


# -- a results folder belongs to one run and keeps what finished (model.results_folder) --------------

SMALL = dict(replicates=2, years=0.2, population=200, overrides={"simulation.burn_in_years": 0})  # fmt: skip


def _files(folder):  # noqa: ANN001, ANN202
    return {
        p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".oudsim.lock"
    }


def test_a_fresh_run_never_deletes_results_it_did_not_write(tmp_path):
    out = tmp_path / "results"
    run_experiment(["baseline"], out_dir=out, seed=1, **SMALL)
    (out / "notes.txt").write_text("mine")
    before = _files(out)
    with pytest.raises(ScenarioError, match=r"already holds results \(2 of 2 replicates, complete.*--overwrite"):
        run_experiment(["baseline"], out_dir=out, seed=2, **SMALL)
    assert _files(out) == before  # not a byte changed, not a part gone
    result = runner.invoke(app, ["run", "baseline", *TINY, "--seed", "2", "-o", str(out)])
    clean_error(result, "already holds results", "--resume", "--overwrite")
    assert _files(out) == before
    clean_error(runner.invoke(app, ["run", "baseline", *TINY, "-o", str(out), "--resume", "--overwrite"]), "together")

    replaced = run_experiment(["baseline"], out_dir=out, seed=2, overwrite=True, **SMALL)
    assert replaced.ok and replaced.manifest["options"]["seed"] == 2
    assert (out / "notes.txt").read_text() == "mine"  # only what runs write is replaced
    assert len(list((out / "parts").glob("*.parquet"))) == 2  # seed 1's parts are gone, seed 2's are there


def test_an_empty_out_is_refused_not_taken_for_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", "baseline", *TINY, "--out", ""])
    assert result.exit_code == 2 and "empty" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ScenarioError, match="--out is empty"):
        run_experiment(["baseline"], out_dir="", **SMALL)


def test_a_folder_in_use_by_another_run_is_refused_naming_the_holder(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "busy"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from oudsim.model.results_folder import claim\n"
         f"with claim({str(out)!r}):\n    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        result = runner.invoke(app, ["run", "baseline", *TINY, "-o", str(out)])
        clean_error(result, f"{out} is in use by another run (process {holder.pid} on ", "wait for it to end")
        assert not list((out / "parts").glob("*.parquet"))
    finally:
        holder.communicate("", timeout=60)
    # The holder has ended, so the lock is gone with it: the folder is free (nothing to clear by hand).
    assert runner.invoke(app, ["run", "baseline", *TINY, "-o", str(out)]).exit_code == 0


def test_a_part_of_another_model_version_is_run_again(tmp_path, monkeypatch):
    from oudsim.model import results_folder

    out = tmp_path / "o"
    monkeypatch.setattr(results_folder, "model_version", lambda: "0.0.1+older")
    run_experiment(["baseline"], out_dir=out, **SMALL)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="2 damaged or foreign part"):
        again = run_experiment(["baseline"], out_dir=out, resume=True, **SMALL)
    assert again.ok and again.resumed == 0


def test_a_full_disk_names_the_file_it_could_not_write(tmp_path, monkeypatch):
    import errno

    from oudsim.model import experiments

    def full(path, frame, task):  # noqa: ANN001, ANN202
        path.write_bytes(b"PAR1")  # a few bytes reach the disk, then it is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(experiments, "write_part", full)
    out = tmp_path / "o"
    result = runner.invoke(app, ["run", "baseline", *TINY, "-o", str(out)])
    clean_error(result, f"{out / 'parts'}/baseline-r00000-", ".parquet: No space left on device")
    assert not [p for p in (out / "parts").iterdir()]  # no half-written file, under any name


def test_control_characters_and_markup_reach_the_terminal_as_text(tmp_path):
    result = runner.invoke(app, ["run", "bad\x1b[2Jname", *TINY, "-o", str(tmp_path / "o")])
    clean_error(result, "bad\\x1b[2Jname")
    assert "\x1b" not in result.output
    out = tmp_path / "[red]x[/red]"
    result = runner.invoke(app, ["run", "baseline", *TINY, "-o", str(out)])
    assert result.exit_code == 0 and f"Wrote {out}/timeseries.parquet" in result.output


def test_the_compare_page_runs_only_the_scenarios_it_offered(monkeypatch):
    """A tampered browser can send any value for the comparator; the page keeps to the scenarios it
    offered (loaded when the page was built) and never hands the value to the scenario loader (which
    would read a path on the server)."""
    import ipyvue
    import ipyvuetify as v
    import solara

    import oudsim.scenarios as scenarios
    from oudsim.model.dashboard import compare as page
    from oudsim.model.dashboard.ui import Layout

    loaded: list = []
    original = scenarios.load_scenario
    monkeypatch.setattr(scenarios, "load_scenario", lambda ref, *a, **k: loaded.append(ref) or original(ref, *a, **k))
    _, rc = solara.render(Layout(children=[page.Compare()]), handle_error=False)
    label = "Comparator (every scenario is compared with it)"
    rc.find(v.Select, label=label).widget.v_model = "/etc/passwd.toml"
    explained = [w.attributes.get("innerHTML", "") for w in rc.find(ipyvue.Html, meta_oud_element=True).widgets]
    assert any(text.startswith("<b>baseline</b>") for text in explained), explained
    assert not any("passwd" in text for text in explained)
    assert not [ref for ref in loaded if "passwd" in str(ref)]


def test_the_dashboard_listens_where_host_says_and_nowhere_else(monkeypatch):
    """``oudsim dashboard`` binds to --host (default: this computer only); a HOST variable left in the
    environment (Solara's own command would follow it) does not open it to the network."""
    import solara.__main__ as solara_main

    served: list[list[str]] = []
    monkeypatch.setattr(solara_main.run, "main", lambda args, **kw: served.append(args))
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("SOLARA_HOST", "0.0.0.0")
    import socket

    with socket.socket() as s:  # a port free now
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    assert runner.invoke(app, ["dashboard", "--no-open", "--port", port]).exit_code == 0
    assert runner.invoke(app, ["dashboard", "--no-open", "--port", port, "--host", "127.0.0.2"]).exit_code == 0
    hosts = [args[args.index("--host") + 1] for args in served]
    assert hosts == ["127.0.0.1", "127.0.0.2"]
