"""The distribution as a user installs it: one top-level package, oudsim, that runs beside their own files.

The wheel is built from a clean copy of the repository, installed into a fresh virtual environment
(not the project's, whose editable install would answer every import from the repository), and used
from a folder that holds its own ``model.py`` and ``agents.py``, as Mesa's examples are laid out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib.util import find_spec
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
# What a build must not see: the VCS, environments, caches and build products of the working tree
# (a stale build/lib would be packed into the wheel as it is).
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".ruff_cache",
    "results",
    "test-output",
)
# A user's own files with the generic names the repository's folders have.
USER_FILE = 'raise ImportError("the user\'s own file was imported")\n'


def run(cmd: list[str], *, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "NUMBA_"))}
    done = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{cmd}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done


def build_wheel(out: Path, scratch: Path) -> Path:
    source = scratch / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out]
    # Without build isolation (fast) when the project's environment has the build backend;
    # otherwise pip fetches setuptools into an isolated build environment.
    isolation = ["--no-build-isolation"] if find_spec("setuptools") is not None else []
    run([*pip_wheel, *isolation, source])
    (wheel,) = out.glob("oudsim-*.whl")
    return wheel


def fresh_venv(where: Path, wheel: Path) -> Path:
    """A new environment holding the wheel, with the project environment's packages as its dependencies."""
    run([sys.executable, "-m", "venv", "--without-pip", where])
    python = where / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel])
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # A plain path line: the project's site-packages joins sys.path after the fresh one, and its own
    # .pth files (the editable install's finder among them) are not run.
    (site / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.mark.slow
def test_wheel_installs_one_package_that_runs_beside_a_users_model_py(tmp_path: Path) -> None:
    # a) The wheel: one top-level name (and its metadata), with the package root and the scenarios.
    wheel = build_wheel(tmp_path / "wheel", tmp_path)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert wheel.name == f"oudsim-{version}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"oudsim", f"oudsim-{version}.dist-info"}, sorted(top_level)
    for needed in (
        "oudsim/__init__.py",
        "oudsim/model/oud_model.py",
        "oudsim/agents/__init__.py",
        "oudsim/scenarios/baseline.toml",
    ):
        assert needed in names, needed
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]

    # b) A fresh environment answers `import oudsim` from the wheel, not from the repository.
    venv = tmp_path / "venv"
    python = fresh_venv(venv, wheel)
    where = run([python, "-c", "import oudsim, oudsim.model; print(oudsim.__file__); print(oudsim.model.__file__)"])
    for found in where.stdout.split():
        assert Path(found).resolve().is_relative_to(venv.resolve()), where.stdout
        assert not Path(found).resolve().is_relative_to(ROOT), where.stdout

    # c) A user's folder with its own model.py and agents.py: they are importable there, and oudsim
    # still runs, both from Python and from the console script.
    user = tmp_path / "user"
    user.mkdir()
    (user / "model.py").write_text(USER_FILE)
    (user / "agents.py").write_text(USER_FILE)
    shadowed = subprocess.run([python, "-c", "import model"], cwd=user, capture_output=True, text=True)
    assert "the user's own file was imported" in shadowed.stderr  # the clash the test is about is real

    code = (
        "from oudsim import OUDModel; m = OUDModel(population=300, rng=1, burn_in_years=0.2); "
        "m.run_for(3); print(m.metrics['oud_prevalence'])"
    )
    ran = run([python, "-c", code], cwd=user)
    assert 0.0 <= float(ran.stdout.strip().splitlines()[-1]) <= 1.0

    out = user / "res"
    oudsim = venv / "bin" / "oudsim"
    cli = [oudsim, "run", "baseline", "-n", "2", "-y", "1", "-p", "500", "-w", "2",
           "--set", "simulation.burn_in_years=0.2", "--out", out]  # fmt: skip
    run(cli, cwd=user)
    for produced in ("timeseries.parquet", "summary.csv", "manifest.json"):
        assert (out / produced).is_file(), produced
    assert set(pd.read_parquet(out / "timeseries.parquet")["replicate"]) == {0, 1}
