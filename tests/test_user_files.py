"""Every file a user hands oudsim, fed non-UTF-8, empty, truncated and garbage bytes (issue 17): one
message naming the file, exit 2, no traceback, nothing run."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oudsim.model import cli
from oudsim.model.cli import app
from oudsim.model.experiments import run_experiment

runner = CliRunner()
TINY = ["-p", "200", "-n", "1", "-y", "0.2", "--set", "simulation.burn_in_years=0", "-w", "1"]
BREAKAGES = ("not_utf8", "empty", "truncated", "garbage")


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.out_console, "width", 600)
    monkeypatch.setattr(cli.err_console, "width", 600)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder of a finished comparison (every file a later command reads back)."""
    out = tmp_path_factory.mktemp("finished") / "results"
    run_experiment(["baseline", "naloxone"], out_dir=out, replicates=2, years=0.2, population=200,
                   overrides={"simulation.burn_in_years": 0})  # fmt: skip
    assert runner.invoke(app, ["compare", "baseline", "naloxone", "--from", str(out)]).exit_code == 0
    return out


def broken(path: Path, how: str) -> None:
    """Break ``path`` in place, as a disk, an editor or a copy gone wrong would."""
    data = path.read_bytes()
    path.write_bytes(
        {
            "not_utf8": b'name = "\xff\xfe\x00bad"\n' + data[:40],
            "empty": b"",
            "truncated": data[: max(len(data) // 2, 1)],
            "garbage": random.Random(len(data)).randbytes(512),
        }[how]
    )


def _scenario(tmp: Path) -> tuple[Path, list[str]]:
    path = tmp / "mine.toml"
    path.write_text('name = "mine"\nextends = "baseline"\ndescription = "x"\n[parameters]\nisolation = 1.5\n')
    return path, ["validate", str(path)]


def _parent(tmp: Path) -> tuple[Path, list[str]]:
    parent = tmp / "parent.toml"
    parent.write_text('name = "parent"\nextends = "baseline"\ndescription = "x"\n[parameters]\nisolation = 1.5\n')
    child = tmp / "child.toml"
    child.write_text(f'name = "child"\nextends = "{parent}"\ndescription = "y"\n')
    return parent, ["validate", str(child)]


def _folder_of_scenarios(tmp: Path) -> tuple[Path, list[str]]:
    path, _ = _scenario(tmp)
    return path, ["scenarios", "--dir", str(tmp)]


def _edge_list(tmp: Path) -> tuple[Path, list[str]]:
    path = tmp / "edges.txt"
    path.write_text("".join(f"{i} {i + 1}\n" for i in range(199)))
    sets = ["--set", "network.kind=edgelist", "--set", f"network.edgelist_path={path}"]
    return path, ["run", "baseline", *TINY, *sets, "-o", str(tmp / "o")]


def _posterior(tmp: Path) -> tuple[Path, list[str]]:
    from tests.test_posterior import small_posterior

    path = small_posterior().save(tmp / "posterior.parquet")
    return path, ["run", "baseline", *TINY, "--posterior", str(path), "-o", str(tmp / "o")]


def _results_file(name: str, command: str):  # noqa: ANN202
    def make(tmp: Path, finished: Path) -> tuple[Path, list[str]]:
        copy = tmp / "results"
        shutil.copytree(finished, copy)
        if name != "replicates.csv" and command == "compare":
            (copy / "replicates.csv").unlink()  # compare --from reads the series when the table is gone
        args = {
            "compare": ["compare", "baseline", "naloxone", "--from", str(copy), "-o", str(tmp / "c")],
            "report": ["report", str(copy)],
        }[command]
        return copy / name, args

    return make


READERS = {
    "scenario file": _scenario,
    "extends parent": _parent,
    "scenarios --dir": _folder_of_scenarios,
    "edge list": _edge_list,
    "posterior": _posterior,
}
READ_BACK = {
    "replicates.csv (compare --from)": _results_file("replicates.csv", "compare"),
    "timeseries.parquet (compare --from)": _results_file("timeseries.parquet", "compare"),
    "timeseries.parquet (report)": _results_file("timeseries.parquet", "report"),
    "summary.csv (report)": _results_file("summary.csv", "report"),
    "comparison.csv (report)": _results_file("comparison.csv", "report"),
    "manifest.json (report)": _results_file("manifest.json", "report"),
}


def _check(path: Path, args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (args, result.output, result.exception)
    assert "Traceback" not in result.output
    assert path.name in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output


@pytest.mark.parametrize("how", BREAKAGES)
@pytest.mark.parametrize("reader", list(READERS))
def test_every_input_file_broken_any_way_is_one_message_naming_it(tmp_path, reader, how):
    path, args = READERS[reader](tmp_path)
    broken(path, how)
    _check(path, args)
    assert not (tmp_path / "o" / "parts").is_dir() or not list((tmp_path / "o" / "parts").iterdir())


@pytest.mark.parametrize("how", BREAKAGES)
@pytest.mark.parametrize("reader", list(READ_BACK))
def test_every_file_read_back_broken_any_way_is_one_message_naming_it(tmp_path, finished, reader, how):
    path, args = READ_BACK[reader](tmp_path, finished)
    broken(path, how)
    _check(path, args)
