"""Warm start: burned-in models kept on disk, so a rerun starts at week 0 at once.

The state at week 0 depends only on the model's code, the parameters before interventions and the seed
(interventions act from week 1): a snapshot is kept under a key of the three, and used only if its
header names the same key, the same code and a checksum its bytes match. Anything else (another
version of oudsim, a file copied under another key's name, a damaged or cut file) is refused with a
warning and the burn-in is run again, then kept in its place: a warm start never changes a result
(tests/test_snapshots.py).

The folder is ``<cache>/oudsim/warm-start`` (``OUDSIM_CACHE_DIR`` moves the cache, as for the compiled
kernels); each snapshot is a pickle, read only from that folder, which its user owns. Delete the folder
to free the space (a 50,000-people model takes a few tens of MB).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oudsim.model.jit import cache_dir
from oudsim.model.results_folder import atomic_write

if TYPE_CHECKING:
    from oudsim.model.oud_model import OUDModel
    from oudsim.model.parameters import Parameters

MAGIC = b"oudsim-warm-start 1\n"


def folder() -> Path:
    """Where snapshots are kept: beside the compiled kernels' cache (``OUDSIM_CACHE_DIR``)."""
    return cache_dir().parent.parent / "warm-start"


def code_version() -> str:
    """The model's code, as a digest of its source (the compiled kernels' cache is keyed by it too)."""
    return cache_dir().name


def key(params: Parameters, seed: int) -> str:
    """What the state at week 0 depends on: the code, the parameters before interventions, the seed."""
    spec = {"code": code_version(), "params": params.model_dump(mode="json"), "seed": int(seed)}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]


def path_for(params: Parameters, seed: int, where: Path | None = None) -> Path:
    return (where or folder()) / f"{key(params, seed)}.pkl"


def load(params: Parameters, seed: int, where: Path | None = None) -> OUDModel | None:
    """The burned-in model kept for (params, seed), or None if there is none or it is refused."""
    path = path_for(params, seed, where)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        warnings.warn(f"warm start: could not read {path} ({e}); running the burn-in", stacklevel=2)
        return None
    reason = _refusal(blob, key(params, seed))
    if reason is None:
        try:
            model = pickle.loads(blob[blob.index(b"\n", len(MAGIC)) + 1 :])  # noqa: S301 - our own cache
        except Exception as e:  # noqa: BLE001 - any unpickling failure is a damaged file
            reason = f"it could not be read back ({type(e).__name__})"
        else:
            if model.week == 0 and model.base_params == params:
                return model
            reason = "it holds another model"
    warnings.warn(f"warm start: refused {path}: {reason}; running the burn-in again", stacklevel=2)
    return None


def _refusal(blob: bytes, expected_key: str) -> str | None:
    """Why a snapshot's bytes cannot be used, or None."""
    if not blob.startswith(MAGIC):
        return "it is not an oudsim warm-start file"
    try:
        end = blob.index(b"\n", len(MAGIC))
        header: dict[str, Any] = json.loads(blob[len(MAGIC) : end])
    except ValueError:
        return "its header is damaged"
    if header.get("code") != code_version():
        return f"it was made by other code of the model ({header.get('code')}, this is {code_version()})"
    if header.get("key") != expected_key:
        return "it was made for other parameters or another seed"
    if hashlib.sha256(blob[end + 1 :]).hexdigest() != header.get("sha256"):
        return "its bytes do not match their checksum (damaged or cut short)"
    return None


def save(model: OUDModel, params: Parameters, seed: int, where: Path | None = None) -> Path | None:
    """Keep a model at week 0 as the snapshot of (params, seed); the path, or None if it could not be
    written (a warning says why: a full disk must not fail the run)."""
    if model.week != 0:
        raise ValueError(f"a warm-start snapshot is of the state at week 0, not week {model.week}")
    path = path_for(params, seed, where)
    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    header = {"code": code_version(), "key": key(params, seed), "sha256": hashlib.sha256(payload).hexdigest()}
    try:
        os.makedirs(path.parent, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + payload))
    except OSError as e:
        warnings.warn(f"warm start: could not keep {path} ({e}); the run goes on", stacklevel=2)
        return None
    return path


def burned_in(params: Parameters, seed: int, *, warm_start: bool = False, where: Path | None = None) -> OUDModel:
    """A model at week 0 without agents (as experiments run it): from its snapshot with ``warm_start``
    (kept for next time if there was none), else built and burned in."""
    from oudsim.model.oud_model import OUDModel

    if warm_start:
        model = load(params, seed, where)
        if model is not None:
            from oudsim.model.oud_model import default_threads

            model.threads = default_threads(model.population.n)  # this process's, not the saver's
            return model
    model = OUDModel(params=params, rng=seed, agents=False)
    if warm_start:
        save(model, params, seed, where)
    return model
