"""A log of stage changes (week, person id, from, to) that the compiled processes append to.

The log is one int64 table, a row per change: the person's id, and the week and the two stages packed
into one integer (``week << 16 | from << 8 | to``). Processes write their changes as they make them
(``append``, compiled): handing arrays of changes back to Python each step cost more than the
recording itself (an array returned from a compiled call is ~1 us to box, several a step).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from oudsim.agents.states import Stage
from oudsim.model.jit import njit

_COUNT, _ON = 0, 1  # slots of ``TransitionLog.count``


class TransitionLog:
    def __init__(self, capacity: int = 1024) -> None:
        self.table = np.empty((capacity, 2), dtype=np.int64)  # person id, packed (week, from, to)
        self.count = np.zeros(2, dtype=np.int64)  # rows used; 1 while recording (off during burn-in)

    @property
    def recording(self) -> bool:
        return bool(self.count[_ON])

    @recording.setter
    def recording(self, on: bool) -> None:
        self.count[_ON] = int(on)

    def room(self, k: int) -> np.ndarray:
        """The table, grown if needed so that ``k`` more changes fit (a compiled process that may change
        up to ``k`` people's stages gets the table from here)."""
        need = self.count.item(_COUNT) + k
        if need > self.table.shape[0]:
            bigger = np.empty((max(need, 2 * self.table.shape[0]), 2), dtype=np.int64)
            bigger[: self.count[_COUNT]] = self.table[: self.count[_COUNT]]
            self.table = bigger
        return self.table

    def record(self, week: int, uids: np.ndarray, old: np.ndarray, new: int | np.ndarray) -> None:
        """People ``uids`` moved from stages ``old`` to ``new`` (one stage for all, or one each)."""
        if uids.size:
            new = np.broadcast_to(np.asarray(new, dtype=np.int64), uids.shape)
            _record(self.room(uids.size), self.count, uids, np.asarray(old, dtype=np.int64), new, week)

    def _columns(self) -> tuple[np.ndarray, ...]:
        used = self.table[: self.count[_COUNT]]
        packed = used[:, 1]
        return packed >> 16, used[:, 0], ((packed >> 8) & 0xFF).astype(np.int8), (packed & 0xFF).astype(np.int8)

    def frame(self) -> pd.DataFrame:
        week, uids, old, new = self._columns()
        return pd.DataFrame({"week": week, "person": uids, "from": old, "to": new})

    def for_person(self, uid: int) -> list[tuple[int, Stage, Stage]]:
        week, uids, old, new = self._columns()
        return [(int(week[i]), Stage(int(old[i])), Stage(int(new[i]))) for i in np.flatnonzero(uids == uid)]

    def __len__(self) -> int:
        return int(self.count[_COUNT])


@njit(inline=True)
def append(table, count, uid, row, old, new, week):
    """Record that the person in ``row`` moved from stage ``old`` to ``new`` (while recording; the table
    has room: the caller got it from ``TransitionLog.room``)."""
    if count[_ON]:
        j = count[_COUNT]
        table[j, 0] = uid[row]
        table[j, 1] = (np.int64(week) << 16) | (np.int64(old) << 8) | np.int64(new)
        count[_COUNT] = j + 1


@njit
def _record(table, count, uids, old, new, week):
    for j in range(uids.size):
        append(table, count, uids, j, old[j], new[j], week)
