"""Compiled kernels: the decorator, the random stream they draw from, and event sampling by thinning.

Each process runs as one compiled loop over the people (or ties) it touches (numba): at county scale
a step is ~150 separate numpy passes otherwise, and at small sizes their fixed cost per call is most
of the step (measured in bench/). The processes stay one module each; only their inner loops compile.

Random numbers. A numpy ``Generator`` passed into a compiled function costs ~13 us a call to unbox
(measured), more than most kernels take, so the kernels draw from a *stream*: the state of a
xoshiro256** generator (Blackman and Vigna 2018; 256-bit state, period 2^256 - 1) in a uint64 array
of four words. The model owns one per mechanism, seeded from its ``rng`` (``OUDModel.streams``): one
seed still fixes the whole run, two models never share a stream, and paired scenario arms keep the
draws of the mechanisms they do not change in step.

Streams by block. A pass that walks a long range by thinning (below) splits it into blocks of fixed
size, each with a stream of its own seeded from the step and the block's number (``seed_block``): the
blocks can run on any thread in any order and draw the same numbers (``njit(threaded=True)``).

Thinning. An event with annual hazard h happens in a step of dt years with probability
p = 1 - exp(-h dt). For rare events over many people, candidates come at the largest possible
probability p_max as a Bernoulli process (geometric gaps: no draw per person) and each candidate is
kept with probability p_i / p_max, which is exact (Lewis and Shedler 1979) and costs in proportion to
the candidates, not the population.
"""

from __future__ import annotations

import hashlib
import math
import os
import types
from pathlib import Path

import numba
import numpy as np

__all__ = [
    "njit", "use_threads", "threads_allowed", "new_stream", "uniform", "exponential", "gap", "log_skip", "prob",
    "stream_uniforms", "total", "list_where",
]  # fmt: skip


def source_digest(folders: list[Path]) -> str:
    """A digest of every Python file under the folders (their paths relative to the folders, and
    their bytes)."""
    h = hashlib.sha256()
    for folder in folders:
        for f in sorted(folder.rglob("*.py")):
            h.update(str(f.relative_to(folder)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """Where compiled kernels are kept: a folder per version of the model's source. numba's own cache
    notices a change to the file a kernel is in, but not to the helpers it inlines from other files
    (the random stream, the stage tests, mark_deceased), so a kernel compiled before such a change
    would run stale. ``OUDSIM_CACHE_DIR`` moves it (default: the user's cache folder)."""
    package = Path(__file__).resolve().parent.parent  # holds model/ and agents/ (a checkout, or oudsim/)
    base = (
        os.environ.get("OUDSIM_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "oudsim"
    )
    return Path(base) / "numba" / source_digest([package / "model", package / "agents"])


if not os.environ.get("NUMBA_CACHE_DIR"):  # a folder the user chose for numba wins
    numba.config.CACHE_DIR = str(cache_dir())


def njit(fn=None, *, inline: bool = False, threaded: bool = False):
    """numba.njit, cached on disk (compiled once per machine and source, not per process; cache_dir).
    ``inline=True`` for the small helpers called in inner loops (the random stream, switching a tie):
    a call across compiled functions costs more than their bodies. ``threaded=True`` for a kernel
    whose ``prange`` loops may split over threads (``Threaded``)."""
    if fn is None:
        return lambda f: njit(f, inline=inline, threaded=threaded)
    if threaded:
        return Threaded(fn)
    return numba.njit(cache=True, nogil=True, inline="always" if inline else "never")(fn)


# Threads. A kernel made with ``njit(threaded=True)`` is compiled twice: as it is, and with numba's
# ``parallel=True``, where its ``prange`` loops split over threads. Those loops run over fixed blocks of
# people or entries and each block writes only its own part (no shared totals, no draws from a shared
# stream), so a run gives the same numbers on any number of threads; the serial compile runs the same
# blocks in order. The model says how many threads its steps use (``use_threads``, at each step).
_threads = 1


def threads_allowed() -> int:
    """The most threads a model may use: numba's pool (``NUMBA_NUM_THREADS``, by default the cores)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def use_threads(n: int) -> None:
    """Run threaded kernels on ``n`` threads from here on (1: their serial compile)."""
    global _threads
    if n > 1 and n != _threads:
        numba.set_num_threads(n)
    _threads = n


class Threaded:
    """A kernel with a serial and a threaded compile, called as the one ``use_threads`` asks for.
    ``py_func`` is the Python function (model.binding reads its parameters)."""

    def __init__(self, fn) -> None:
        self.py_func = fn
        self.__name__, self.__doc__ = fn.__name__, fn.__doc__
        self.serial = numba.njit(cache=True, nogil=True)(fn)
        # numba's disk cache keys a compile by the function's name and signature, not by its flags:
        # the threaded compile is of a copy under a name of its own, or it would load the serial one.
        twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
        twin.__qualname__ = f"{fn.__qualname__}__threaded"
        self.threaded = numba.njit(cache=True, nogil=True, parallel=True)(twin)

    def __call__(self, *args):
        return (self.threaded if _threads > 1 else self.serial)(*args)


_U64 = np.uint64


def new_stream(rng: np.random.Generator) -> np.ndarray:
    """Four uint64 words of xoshiro256** state drawn from a numpy Generator (never all zero)."""
    state = rng.bit_generator.random_raw(4).astype(np.uint64)
    if not state.any():
        state[0] = 1
    return state


_GOLDEN = 0x9E3779B97F4A7C15  # splitmix64's increment


@njit
def reseed_streams(states, keys, week):
    """Each stream's state (a row of ``states``) for this step, from its key and the week (splitmix64):
    every stream starts each step at the same place in two scenario arms run on one seed, however
    their draws diverged the step before (once an arm's people differ, a stream walked on from step to
    step would stay out of step for good, and paired differences would lose their common random
    numbers)."""
    wk = np.uint64(week & 0xFFFFFFFF)
    for k in range(states.shape[0]):
        x = keys[k] ^ (wk * _U64(_GOLDEN))
        for w in range(4):
            x += _U64(_GOLDEN)
            z = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
            states[k, w] = z ^ (z >> _U64(31))
        if states[k, 0] == 0 and states[k, 1] == 0 and states[k, 2] == 0 and states[k, 3] == 0:
            states[k, 0] = _U64(1)


@njit(inline=True)
def step_key(s):
    """A key for this step's keyed draws, read from a stream's state before it draws (the state it was
    reseeded to: one per stream and week)."""
    return s[0] ^ _rotl(s[3], 29)


@njit(inline=True)
def keyed_bits(key, row, slot):
    """64 random bits fixed by (key, row, slot) alone (splitmix64's finaliser on their mix)."""
    x = key ^ (np.uint64(row) * _U64(0xD1B54A32D192ED03)) ^ ((np.uint64(slot) + _U64(1)) * _U64(_GOLDEN))
    z = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


@njit(inline=True)
def seed_block(state, key, block):
    """Seed ``state`` (four words of xoshiro256** state) as the stream of one block of rows or entries:
    fixed by the key and the block's number alone, so a block draws the same numbers whichever thread
    runs it and however many there are. ``key`` is a draw of the mechanism's stream
    (``block_key``), apart from the step keys of its keyed draws (``step_key``)."""
    for w in range(4):
        state[w] = keyed_bits(key, block, w)
    if state[0] == 0 and state[1] == 0 and state[2] == 0 and state[3] == 0:
        state[0] = _U64(1)


@njit(inline=True)
def block_key(s):
    """The key of this step's block streams (seed_block): a draw of the mechanism's stream."""
    return next_u64(s)


@njit(inline=True)
def keyed_uniform(key, row, slot):
    """A float64 in [0, 1) fixed by (key, row, slot) alone: a person's draws in a pass over a list of
    people do not depend on who else is listed, so two scenario arms whose lists differ still draw the
    same numbers for the same person (common random numbers person by person)."""
    return float(keyed_bits(key, row, slot) >> _U64(11)) * (1.0 / 9007199254740992.0)


_LANE = 65536.0


@njit(inline=True)
def lane_below(bits, lane, key, row, slot, q):
    """Whether uniform number ``lane`` (0-3) of a person's keyed draw ``bits`` is below q.

    One keyed draw holds the leading 16 bits of four uniforms, one per lane; the rest of a uniform's
    bits are drawn (keyed, at ``slot``) only when its leading bits cannot decide, about once in
    65,536/q tests: four exact uniforms for the price of one draw, where most tests are against small
    probabilities."""
    top = float((bits >> _U64(16 * lane)) & _U64(0xFFFF))
    x = q * _LANE
    if top >= x:  # (lane_at_least: the same test)
        return False
    if top + 1.0 <= x:
        return True
    return top + keyed_uniform(key, row, slot) < x


@njit(inline=True)
def lane_at_least(bits, lane, q):
    """Whether uniform number ``lane`` of ``bits`` is surely at least q (its leading bits say so): a
    test against a bound on q that turns most candidates down before q itself is worked out."""
    return float((bits >> _U64(16 * lane)) & _U64(0xFFFF)) >= q * _LANE


@njit(inline=True)
def _rotl(x, k):
    return (x << _U64(k)) | (x >> _U64(64 - k))


@njit(inline=True)
def next_u64(s):
    """One xoshiro256** output; advances the state in place."""
    result = _rotl(s[1] * _U64(5), 7) * _U64(9)
    t = s[1] << _U64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@njit(inline=True)
def uniform(s):
    """A float64 in [0, 1) with 53 random bits."""
    return float(next_u64(s) >> _U64(11)) * (1.0 / 9007199254740992.0)


# Logarithms of 1 - u are taken with log, not log1p: for these uniforms (multiples of 2^-53) 1 - u is
# exact, so the two agree to rounding, and log is the faster of the two (gaps and draws are the most
# frequent calls of the step).


@njit(inline=True)
def exponential(s):
    """A standard exponential draw."""
    return -math.log(1.0 - uniform(s))


@njit(inline=True)
def below(u, x):
    """Whether the exponential draw made from uniform u (as ``exponential`` makes it) is below x."""
    return -math.log(1.0 - u) < x


def skip_bound(x_max: float) -> float:
    """A uniform at or above this cannot make an exponential draw below any x <= x_max, so a kernel
    that draws u first can skip working out x (and the logarithm) for it: most people, most steps.
    The margin covers rounding, so the decisions are exactly those of drawing the exponential."""
    return min(1.0, -math.expm1(-x_max) * (1.0 + 1e-9)) if x_max < 700.0 else 1.0


@njit(inline=True)
def log_skip(p):
    """log(1 - p) for gap(); -inf when p >= 1 (every index is a candidate)."""
    return math.log1p(-p) if p < 1.0 else -math.inf


_NO_MORE = 1 << 62  # a gap past any population: no further candidate


@njit(inline=True)
def gap(s, log_q):
    """Failures before the next success of a Bernoulli process with log(1 - p) = log_q (geometric).
    Capped, so a tiny p (a rate switched off to ~0) cannot overflow the index."""
    x = math.log(1.0 - uniform(s)) / log_q
    return int(x) if x < _NO_MORE else _NO_MORE


@njit(inline=True)
def prob(rate, dt):
    """Probability of at least one event in a step: 1 - exp(-rate * dt)."""
    return -math.expm1(-rate * dt)


@njit
def total(x):
    """Sum of an array in four interleaved parts: one running total waits on each addition in turn."""
    a = b = c = d = 0.0
    n4 = x.size - x.size % 4
    for i in range(0, n4, 4):
        a += x[i]
        b += x[i + 1]
        c += x[i + 2]
        d += x[i + 3]
    for i in range(n4, x.size):
        a += x[i]
    return (a + b) + (c + d)


@njit(inline=True)
def list_where(flags, out):
    """The indices i where flags[i] (0 or 1) is set, in order, into ``out``; returns how many.

    Branchless: every index is written and the count moves past those kept. Callers fill ``flags`` in
    a loop of its own (plain arithmetic, vector code): a condition worked out in this loop measured
    2-3x slower."""
    m = 0
    for i in range(flags.size):
        out[m] = i
        m += flags[i]
    return m


@njit
def stream_uniforms(s, k):
    """k uniforms from the stream (for tests of the stream itself)."""
    out = np.empty(k)
    for j in range(k):
        out[j] = uniform(s)
    return out


def compile_all() -> float:
    """Compile every kernel (or load it from the disk cache) by running a tiny model; seconds taken.

    The first run on a machine compiles (~20 s on a two-core machine, and as long again for the
    threaded compiles where there are two cores or more); later runs load the cache."""
    import time

    from oudsim.model import OUDModel

    t = time.perf_counter()
    for threads in sorted({1, min(2, threads_allowed())}):
        OUDModel(population=300, rng=0, burn_in_years=0.1, threads=threads).run_for(2)
    return time.perf_counter() - t


if __name__ == "__main__":
    print(f"oudsim's compiled processes are ready ({compile_all():.1f} s; cached on disk for later runs)")
