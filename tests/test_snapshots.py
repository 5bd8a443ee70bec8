"""Warm start (issue 19): burned-in states kept on disk give the runs of burning in afresh, and a
stale, foreign or damaged snapshot is refused and recomputed."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import pytest

from oudsim.model import OUDModel, snapshots
from oudsim.model import experiments as ex
from oudsim.model.parameters import Parameters, apply_overrides

PARAMS = apply_overrides(Parameters(), {"simulation.population": 1_200, "simulation.burn_in_years": 1})


def frames_after(model: OUDModel, steps: int = 30):
    model.run_for(steps)
    return model.metrics_frame()


def fresh_frames(params: Parameters = PARAMS, seed: int = 5):
    return frames_after(OUDModel(params=params, rng=seed, agents=False))


def test_a_warm_start_gives_the_run_of_a_fresh_burn_in(tmp_path: Path):
    first = snapshots.burned_in(PARAMS, 5, warm_start=True, where=tmp_path)  # burns in, keeps it
    kept = list(tmp_path.glob("*.pkl"))
    assert len(kept) == 1 and kept[0] == snapshots.path_for(PARAMS, 5, tmp_path)
    assert snapshots.load(PARAMS, 5, tmp_path) is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a good snapshot is taken without a word
        second = snapshots.burned_in(PARAMS, 5, warm_start=True, where=tmp_path)
    assert second is not first and second.week == 0
    expected = fresh_frames()
    assert frames_after(first).equals(expected)
    assert frames_after(second).equals(expected)
    # another seed or other parameters have snapshots of their own
    other = apply_overrides(PARAMS, {"social.tie_loss_rate": 0.2})
    assert snapshots.path_for(other, 5, tmp_path) != kept[0] != snapshots.path_for(PARAMS, 6, tmp_path)


def _rewrite_header(path: Path, **changes) -> None:
    blob = path.read_bytes()
    end = blob.index(b"\n", len(snapshots.MAGIC))
    header = json.loads(blob[len(snapshots.MAGIC) : end])
    header.update(changes)
    path.write_bytes(snapshots.MAGIC + json.dumps(header).encode() + blob[end:])


def _flip_a_byte(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    blob[-100] ^= 0xFF
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (_flip_a_byte, "do not match their checksum"),
        (lambda p: p.write_bytes(p.read_bytes()[:-5000]), "do not match their checksum"),
        (lambda p: _rewrite_header(p, code="0123456789abcdef"), "made by other code of the model"),
        (lambda p: p.write_bytes(b"not a snapshot at all"), "not an oudsim warm-start file"),
        (lambda p: p.write_bytes(snapshots.MAGIC + b"{broken\n" + b"x" * 10), "header is damaged"),
    ],
)
def test_a_stale_or_damaged_snapshot_is_refused_and_recomputed(tmp_path: Path, spoil, reason):
    snapshots.burned_in(PARAMS, 5, warm_start=True, where=tmp_path)
    path = snapshots.path_for(PARAMS, 5, tmp_path)
    spoil(path)
    with pytest.warns(UserWarning, match=f"refused .*{reason}.*running the burn-in again"):
        model = snapshots.burned_in(PARAMS, 5, warm_start=True, where=tmp_path)
    assert frames_after(model).equals(fresh_frames())
    assert snapshots.load(PARAMS, 5, tmp_path) is not None  # kept afresh in its place


def test_a_foreign_snapshot_under_another_keys_name_is_refused(tmp_path: Path):
    snapshots.burned_in(PARAMS, 5, warm_start=True, where=tmp_path)
    other = snapshots.path_for(PARAMS, 6, tmp_path)
    other.write_bytes(snapshots.path_for(PARAMS, 5, tmp_path).read_bytes())  # seed 5's state as seed 6's
    with pytest.warns(UserWarning, match="made for other parameters or another seed"):
        model = snapshots.burned_in(PARAMS, 6, warm_start=True, where=tmp_path)
    assert frames_after(model).equals(fresh_frames(seed=6))
    assert not frames_after(snapshots.burned_in(PARAMS, 5, where=tmp_path)).equals(fresh_frames(seed=6))


def test_a_snapshot_is_of_week_0_and_a_full_disk_does_not_fail_the_run(tmp_path: Path):
    model = OUDModel(params=PARAMS, rng=5, agents=False)
    model.run_for(1)
    with pytest.raises(ValueError, match="state at week 0, not week 1"):
        snapshots.save(model, PARAMS, 5, tmp_path)
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder would go")
    with pytest.warns(UserWarning, match="could not keep"):
        assert snapshots.save(OUDModel(params=PARAMS, rng=5, agents=False), PARAMS, 5, blocked) is None
    # a snapshot that unpickles to another model (a bug, or a hand-made file) is refused too
    path = snapshots.path_for(PARAMS, 5, tmp_path)
    snapshots.save(OUDModel(params=PARAMS, rng=5, agents=False), PARAMS, 5, tmp_path)
    blob = path.read_bytes()
    end = blob.index(b"\n", len(snapshots.MAGIC))
    payload = pickle.dumps(model)  # the model at week 1
    _write_with_payload(path, blob[:end], payload)
    with pytest.warns(UserWarning, match="holds another model"):
        assert snapshots.load(PARAMS, 5, tmp_path) is None


def _write_with_payload(path: Path, head: bytes, payload: bytes) -> None:
    import hashlib

    header = json.loads(head[len(snapshots.MAGIC) :])
    header["sha256"] = hashlib.sha256(payload).hexdigest()
    path.write_bytes(snapshots.MAGIC + json.dumps(header).encode() + b"\n" + payload)


def test_experiments_with_a_warm_start_write_the_same_files(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OUDSIM_CACHE_DIR", str(tmp_path / "cache"))
    args = dict(replicates=2, years=1.5, population=800, overrides={"simulation.burn_in_years": 1})
    names = ["baseline", "naloxone"]
    cold = ex.run_experiment(names, out_dir=tmp_path / "cold", **args)
    first = ex.run_experiment(names, out_dir=tmp_path / "first", warm_start=True, **args)
    assert len(list(snapshots.folder().glob("*.pkl"))) == 2  # one burn-in per replicate
    again = ex.run_experiment(names, out_dir=tmp_path / "again", warm_start=True, **args)
    assert cold.ok and first.ok and again.ok and again.manifest["options"]["warm_start"]
    for name in ("timeseries.parquet", "summary.csv", "replicates.csv"):
        data = (tmp_path / "cold" / name).read_bytes()
        assert (tmp_path / "first" / name).read_bytes() == data, name
        assert (tmp_path / "again" / name).read_bytes() == data, name


def test_the_command_line_takes_warm_start(tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    from oudsim.model.cli import app

    monkeypatch.setenv("OUDSIM_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    args = ["compare", "baseline", "naloxone", "-p", "500", "-n", "1", "-y", "0.5", "-o", str(out), "--warm-start"]
    args += ["--set", "simulation.burn_in_years=0.5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(list(snapshots.folder().glob("*.pkl"))) == 1
    assert json.loads((out / "manifest.json").read_text())["options"]["warm_start"] is True
