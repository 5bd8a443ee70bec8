"""A results folder, kept the way a database keeps its files.

- **One run at a time.** A run holds an exclusive lock on ``FOLDER/.oudsim.lock`` (``fcntl.flock``)
  for as long as it runs; a second run on the same folder is refused with the holder's process id,
  host, command and start time. The operating system drops the lock when the holder ends, however it
  ends (kill -9 included), so no stale lock is ever left to clear by hand.
- **Nothing finished is lost.** A fresh run never deletes results it did not write: a folder that
  holds parts or a manifest is continued (``resume``), replaced only when told (``overwrite``), or
  refused, saying what it holds.
- **Every part is checked before reuse.** A part (one replicate's frame, ``parts/*.parquet``) carries
  what produced it (scenario, replicate, seed, the scenario's fingerprint, the model's version) and a
  checksum of its values; a part that does not match in every respect is run again.
- **No half-written file under a final name.** Every file is written under a temporary name and moved
  into place with ``os.replace``; a write that fails (a full disk) names the file.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from oudsim.model.console import printable
from oudsim.scenarios import ScenarioError

PARTS = "parts"
LOCK_NAME = ".oudsim.lock"
PART_KEY = b"oudsim_part"
# What runs write into a folder (run, compare, psa): replaced together by --overwrite. Other files
# (a user's notes, a report someone wrote by hand) are never touched.
OUTPUTS = (
    "timeseries.parquet",
    "summary.csv",
    "replicates.csv",
    "manifest.json",
    "comparison.csv",
    "outcomes.csv",
    "cost_effectiveness.csv",
    "ce_plane.png",
    "psa.parquet",
    "ceac.csv",
    "evpi.csv",
    "ceac.png",
)


_HELD: set[Path] = set()  # folders this process has claimed (claim is re-entrant)


class FolderBusy(ScenarioError):
    """Another run holds the folder's lock."""


class _Task(Protocol):  # what a part is checked against (experiments.ReplicateTask)
    replicate: int
    seed: int

    @property
    def scenario(self) -> Any: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def steps(self) -> int: ...


# -- the folder's owner ---------------------------------------------------------------------------


@contextlib.contextmanager
def claim(out: str | Path, *, resume: bool = False, overwrite: bool = False) -> Iterator[Path]:
    """Own ``out`` for one run: create it, lock it, and make sure the run loses nothing already there.

    Without ``resume`` or ``overwrite``, a folder that already holds results is refused (one message
    saying what it holds and the three ways on). ``overwrite`` deletes the parts and the outputs runs
    write, and nothing else; ``resume`` keeps them for the run to check and reuse. Re-entrant: a
    command that claims its folder, runs (run_experiment claims it too), then writes its own tables.
    """
    if str(out).strip() and Path(out).resolve() in _HELD:
        yield Path(out)
        return
    out = check(out, resume=resume, overwrite=overwrite)
    key = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with _lock(out):
        check(out, resume=resume, overwrite=overwrite)  # again, under the lock: another run may have ended here
        if overwrite:
            clear(out)
        (out / PARTS).mkdir(exist_ok=True)
        remove_stale_temporaries(out)
        remove_stale_temporaries(out / PARTS)
        _HELD.add(key)
        try:
            yield out
        finally:
            _HELD.discard(key)


def check(out: str | Path, *, resume: bool = False, overwrite: bool = False) -> Path:
    """``out`` as a folder a run may write to, or a ScenarioError saying why not (without locking it:
    the command line asks before it connects to a cluster; ``claim`` asks again under the lock)."""
    if str(out).strip() == "":
        raise ScenarioError("--out is empty: name the folder the results go to (e.g. --out results)")
    if resume and overwrite:
        raise ScenarioError(
            "--resume and --overwrite together: --resume keeps the results in --out, --overwrite deletes them"
        )
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ScenarioError(f"--out {out}: exists and is not a folder")
    held = holdings(out) if out.is_dir() else ""
    if held and not resume and not overwrite:
        raise ScenarioError(
            f"{out} already holds results ({held}). Add --resume to continue them, --overwrite to replace "
            "them, or choose another --out."
        )
    return out


def holdings(out: Path) -> str:
    """What results ``out`` holds, in words ("" if none): the manifest's run, or the number of parts."""
    parts = sum(1 for _ in (out / PARTS).glob("*.parquet")) if (out / PARTS).is_dir() else 0
    manifest = out / "manifest.json"
    if manifest.is_file():
        try:
            m = json.loads(manifest.read_text(encoding="utf-8"))
            done = m["replicates"]
            command = m.get("command")
            what = " ".join([Path(command[0]).name, *command[1:]]) if isinstance(command, list) and command else "a run"
            return (
                f"{done['finished']} of {done['total']} replicates, {m['status']}, of {printable(what)!r} "
                f"started {m['timings']['started']}"
            )
        except (OSError, ValueError, KeyError, TypeError):
            return f"a manifest.json and {parts} part(s)"
    return f"{parts} finished replicate(s) in {PARTS}/ of a run that did not end" if parts else ""


def clear(out: Path) -> None:
    """Delete what runs write here (parts and outputs); leave every other file alone."""
    for part in (out / PARTS).glob("*.parquet") if (out / PARTS).is_dir() else ():
        part.unlink()
    for name in OUTPUTS:
        with contextlib.suppress(FileNotFoundError):
            (out / name).unlink()


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock (the folder is still never cleared unasked)
        yield
        return
    path = out / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusy(
                f"{out} is in use by another run ({_holder(path)}); wait for it to end, or choose another --out"
            ) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(sys.argv),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the lock; the file stays (deleting it would race the next holder)


def _holder(path: Path) -> str:
    try:
        h = json.loads(path.read_text(encoding="utf-8"))
        return f"process {h['pid']} on {h['host']}, {printable(h['command'])!r}, started {h['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a run that has not said who it is yet"


# -- files written whole or not at all -----------------------------------------------------------


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)``, then move tmp onto ``path``; on any failure tmp is removed, and an error
    of the disk (full, read-only) names ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        if e.filename is None or str(e.filename) == str(tmp):  # pyarrow's errors name no file
            raise OSError(e.errno or errno.EIO, e.strerror or str(e), str(path)) from e
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def remove_stale_temporaries(folder: Path) -> None:
    for tmp in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()


# -- parts: one replicate each, checked before reuse --------------------------------------------


@functools.cache
def model_version() -> str:
    """The package version and a digest of the model's source: a part from other code is not reused."""
    from oudsim.model.experiments import package_version
    from oudsim.model.jit import cache_dir

    return f"{package_version()}+{cache_dir().name}"


def checksum(frame: pd.DataFrame) -> str:
    """A hash of a replicate's values (and its column names): a flipped byte changes it."""
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(rows.tobytes() + "|".join(frame.columns).encode()).hexdigest()[:32]


def _identity(task: _Task) -> dict[str, Any]:
    return {
        "scenario": task.scenario.name,
        "replicate": task.replicate,
        "seed": task.seed,
        "fingerprint": task.fingerprint,
        "model_version": model_version(),
    }


def write_part(path: Path, frame: pd.DataFrame, task: _Task) -> None:
    """A replicate's frame as Parquet, with what produced it and a checksum of its values in the
    file's metadata, so that a resumed run can trust it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {**_identity(task), "checksum": checksum(frame)}
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), PART_KEY: json.dumps(meta)}), path)


def read_part(path: Path, task: _Task) -> pd.DataFrame | None:
    """The part's frame if it is this task's replicate, from this model, whole and unchanged; None
    otherwise (truncated, empty, garbage, another replicate's or another version's file, or values
    changed since it was written)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {})[PART_KEY])
        frame = table.to_pandas()
    except Exception:  # noqa: BLE001 - whatever is wrong with it, it is run again
        return None
    if any(meta.get(k) != v for k, v in _identity(task).items()) or meta.get("checksum") != checksum(frame):
        return None
    if len(frame) != task.steps + 1:
        return None
    return frame
