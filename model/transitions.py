"""A log of stage changes (week, person id, from, to), kept in chunks so recording stays cheap."""

from __future__ import annotations

import numpy as np
import pandas as pd

from agents.states import Stage


class TransitionLog:
    def __init__(self) -> None:
        self._chunks: list[tuple[int, np.ndarray, np.ndarray, int | np.ndarray]] = []

    def record(self, week: int, uids: np.ndarray, old: np.ndarray, new: int | np.ndarray) -> None:
        """People ``uids`` moved from stages ``old`` to ``new`` (one stage for all, or one each)."""
        # callers pass fresh arrays (fancy-indexed copies, or a kernel's output), so no copy is needed
        self._chunks.append((week, uids, old, new))

    def frame(self) -> pd.DataFrame:
        if not self._chunks:
            return pd.DataFrame({"week": [], "person": [], "from": [], "to": []})
        weeks = np.concatenate([np.full(c[1].size, c[0]) for c in self._chunks])
        uids = np.concatenate([c[1] for c in self._chunks])
        old = np.concatenate([c[2] for c in self._chunks])
        new = np.concatenate([np.broadcast_to(np.asarray(c[3], dtype=np.int8), c[1].shape) for c in self._chunks])
        return pd.DataFrame({"week": weeks, "person": uids, "from": old, "to": new})

    def for_person(self, uid: int) -> list[tuple[int, Stage, Stage]]:
        out = []
        for week, uids, old, new in self._chunks:
            hit = np.flatnonzero(uids == uid)
            out.extend((week, Stage(int(old[i])), Stage(int(np.broadcast_to(new, uids.shape)[i]))) for i in hit)
        return out

    def __len__(self) -> int:
        return sum(c[1].size for c in self._chunks)
