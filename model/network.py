"""The social network: who could be tied to whom, and which ties are active now.

networkx is the interface for graphs a user brings (an edge-list file, a ``networkx.Graph``) and for
analysis and drawing (``TieNetwork.to_networkx``). The generators here draw the same families of
graphs with numpy, because building a million-node networkx graph costs about a minute and several GB
(measured in bench/); the engine then holds ties as a sparse adjacency whose entries are switched on
and off as ties lapse and regrow, so the structure is built once and never rebuilt during a run.

Ties are of two kinds: *known* ties (the graph) start active; *latent* ties (friends of friends and
strangers one could meet) start dormant and are how new ties form.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import scipy.sparse as sp

from oudsim.model.jit import njit
from oudsim.model.parameters import Network as NetworkParams
from oudsim.model.parameters import ParameterError
from oudsim.model.user_files import read_lines

__all__ = ["TieNetwork", "switch_tie", "build_network", "small_world_edges", "scale_free_edges", "read_edgelist"]


# -- graph generators (numpy, O(edges)) ---------------------------------------------------


def small_world_edges(n: int, mean_degree: float, rewire: float, rng: np.random.Generator) -> np.ndarray:
    """Watts–Strogatz: a ring lattice with k/2 neighbours each side, each tie rewired with prob p."""
    half = max(1, int(round(mean_degree / 2)))
    half = min(half, (n - 1) // 2)
    src = np.repeat(np.arange(n, dtype=np.int64), half)
    dst = (src + np.tile(np.arange(1, half + 1), n)) % n
    move = rng.random(src.size) < rewire
    dst[move] = rng.integers(0, n, size=int(move.sum()))
    return _clean(src, dst, n)


def scale_free_edges(n: int, mean_degree: float, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Chung–Lu graph with power-law expected degrees (exponent gamma) and the given mean degree."""
    i0 = n ** (1.0 - (exponent - 1.0) / 2.0) if exponent < 3 else 1.0  # caps the largest hub
    w = (np.arange(n) + i0) ** (-1.0 / (exponent - 1.0))
    w = rng.permutation(w / w.sum())
    target = int(round(n * mean_degree / 2))
    edges = np.empty((0, 2), dtype=np.int64)
    for _ in range(4):  # top up what self-loops and duplicates removed
        need = target - len(edges)
        if need <= 0:
            break
        m = int(need * 1.05) + 16
        src = rng.choice(n, size=m, p=w)
        dst = rng.choice(n, size=m, p=w)
        edges = _clean(np.concatenate([edges[:, 0], src]), np.concatenate([edges[:, 1], dst]), n)
    if len(edges) > target:
        edges = edges[rng.permutation(len(edges))[:target]]
    return edges


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique(a)`` (sorted, distinct) by a sort: numpy 2.5's ``unique`` hashes int64 keys, which took
    15 s for the 12 million tie keys of a million people; sorting takes 0.2 s."""
    a = np.sort(a)
    keep = np.empty(a.size, dtype=bool)
    keep[:1] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def sorted_contains(table: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``np.isin(keys, table)`` for a sorted ``table``, by binary search (``isin`` goes through
    ``unique`` as well)."""
    at = np.searchsorted(table, keys)
    found = np.zeros(keys.size, dtype=bool)
    inside = at < table.size
    found[inside] = table[at[inside]] == keys[inside]
    return found


def _clean(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """Undirected, no self-loops, no duplicates; rows (u, v) with u < v."""
    keep = src != dst
    u = np.minimum(src[keep], dst[keep]).astype(np.int64)
    v = np.maximum(src[keep], dst[keep]).astype(np.int64)
    key = sorted_unique(u * n + v)
    return np.stack([key // n, key % n], axis=1)


def read_edgelist(path: str | Path, population: int) -> np.ndarray:
    """Load an edge list with networkx, checking it first so errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(
            f"network.edgelist_path: no such file '{path}'; give a text file with one tie 'u v' per line"
        )
    lines = read_lines(path, ParameterError)
    for lineno, line in enumerate(lines, 1):
        parts = line.split("#", 1)[0].split()
        if parts and len(parts) < 2:
            raise ParameterError(
                f"{path}, line {lineno}: expected two node names 'u v' (optionally followed by data), "
                f"got {line.strip()[:60].encode('unicode_escape').decode()!r}"
            )
    try:
        g = nx.parse_edgelist(lines, nodetype=str, data=False, comments="#")
    except Exception as e:  # networkx raises several types for malformed files
        raise ParameterError(f"{path}: could not read as an edge list: {e}") from None
    return graph_edges(g, population, str(path))


def graph_edges(g: nx.Graph, population: int, source: str = "graph") -> np.ndarray:
    """Map a networkx graph's nodes onto rows 0..population-1 and return its ties."""
    if g.number_of_nodes() < population:
        raise ParameterError(
            f"{source}: the network has {g.number_of_nodes()} nodes but the population is {population}; "
            f"set simulation.population to at most {g.number_of_nodes()} or give a larger network"
        )
    nodes = list(g.nodes())[:population]  # a larger graph: its first `population` nodes, in file order
    index = {node: i for i, node in enumerate(nodes)}
    pairs = [(index[a], index[b]) for a, b in g.edges() if a in index and b in index]
    if not pairs:
        return np.empty((0, 2), dtype=np.int64)
    arr = np.asarray(pairs, dtype=np.int64)
    return _clean(arr[:, 0], arr[:, 1], population)


# -- the engine's tie store ------------------------------------------------------------------


class TieNetwork:
    """Undirected ties with an active flag, held as a CSR adjacency of every possible tie (known and
    latent) whose entries say whether their tie is active.

    Each tie has two entries, one in each person's row (``pos_uv``/``pos_vu`` map a tie to them,
    ``entry_row_tie``, viewed as ``row_of_entry`` and ``tie_of_entry``, maps back). An entry holds the
    other person while the tie is active and ``n`` (no one) while it is not (``active_neighbour``), so
    a sum over a row's active ties reads one more, zero, value for each inactive entry and never
    branches (a test of a flag there costs a mispredicted branch per inactive entry: measured 3x
    slower). Switching a tie on or off writes its flag and its two entries and nothing else: no entry
    moves, so a step's tie events cost a few memory reads each. ``n_active`` counts each person's
    active ties.
    """

    def __init__(self, n: int, known: np.ndarray, latent: np.ndarray) -> None:
        self.n = n
        edges = np.concatenate([known, latent]).astype(np.int64)
        self.u = edges[:, 0].astype(np.int32)
        self.v = edges[:, 1].astype(np.int32)
        self.latent = np.zeros(len(edges), dtype=bool)
        self.latent[len(known) :] = True
        self.active = ~self.latent
        e = len(edges)
        src = np.concatenate([self.u, self.v])
        dst = np.concatenate([self.v, self.u])
        order = np.argsort(src, kind="stable")  # by person
        # 32-bit positions while they fit (half the memory, and the compiled step reads them faster)
        idx_t = np.int32 if 2 * e < 2**31 else np.int64
        pos = np.empty(2 * e, dtype=idx_t)
        pos[order] = np.arange(2 * e, dtype=idx_t)
        self.pos_uv, self.pos_vu = pos[:e], pos[e:]
        # Per entry, the person whose row holds it and its tie, side by side: a step that visits entries
        # at random (tie events) then reads one cache line an entry, not two.
        self.entry_row_tie = np.empty((2 * e, 2), dtype=idx_t)
        self.entry_row_tie[:, 0] = src[order]
        self.entry_row_tie[:, 1] = order % e if e else 0
        self.row_of_entry, self.tie_of_entry = self.entry_row_tie[:, 0], self.entry_row_tie[:, 1]
        self.indptr = np.zeros(n + 1, dtype=idx_t)
        np.cumsum(np.bincount(src, minlength=n), out=self.indptr[1:])
        on = np.concatenate([self.active, self.active])
        self.active_neighbour = np.where(on, dst, n)[order].astype(idx_t)
        self.n_active = np.bincount(src[on], minlength=n).astype(idx_t)
        self.max_ties = int(np.diff(self.indptr).max()) if n else 0
        self.running_sum = np.empty(2 * e + 1, dtype=np.int64)  # working memory of passes over all entries

    @property
    def n_ties(self) -> int:
        return self.u.size

    @property
    def adjacency(self) -> sp.csr_array:
        """The active ties as a sparse 0/1 matrix (built on demand, for analysis)."""
        on = self.active_neighbour < self.n
        rows = self.row_of_entry[on]
        cols = self.active_neighbour[on]
        return sp.csr_array((np.ones(rows.size, np.float32), (rows, cols)), shape=(self.n, self.n))

    def set_active(self, ties: np.ndarray, flag: bool) -> None:
        for t in np.asarray(ties, dtype=np.int64).tolist():
            switch_tie(
                t, flag, self.u, self.v, self.active, self.active_neighbour, self.n_active, self.pos_uv, self.pos_vu
            )

    def aggregate(self, columns: np.ndarray) -> np.ndarray:
        """Sum of each column over every person's active ties: (n, k) -> (n, k)."""
        return self.adjacency @ columns

    def neighbours(self, row: int) -> np.ndarray:
        ties = self.active_neighbour[self.indptr[row] : self.indptr[row + 1]]
        return ties[ties < self.n]

    def to_networkx(self, active_only: bool = True) -> nx.Graph:
        """A networkx view of the current ties (built on demand, for analysis and drawing)."""
        g = nx.Graph()
        g.add_nodes_from(range(self.n))
        keep = self.active if active_only else np.ones_like(self.active)
        g.add_edges_from(zip(self.u[keep].tolist(), self.v[keep].tolist(), strict=True))
        return g

    def arrays(self) -> dict[str, np.ndarray]:
        """The tie store's arrays by name, as compiled processes take them (model.binding)."""
        names = ("u", "v", "latent", "active", "pos_uv", "pos_vu", "entry_row_tie", "indptr", "active_neighbour")
        return {name: getattr(self, name) for name in (*names, "n_active", "running_sum")}

    def nbytes(self) -> int:
        return sum(
            x.nbytes
            for x in (
                self.u,
                self.v,
                self.latent,
                self.active,
                self.pos_uv,
                self.pos_vu,
                self.entry_row_tie,
                self.active_neighbour,
                self.n_active,
                self.running_sum,
                self.indptr,
            )
        )


@njit(inline=True)
def switch_tie(t, on, u, v, active, active_neighbour, n_active, pos_uv, pos_vu):
    """Switch tie t on or off (nothing if it already is): its flag, its two entries, and the two
    people's counts of active ties."""
    if active[t] == on:
        return
    active[t] = on
    nobody = n_active.size
    active_neighbour[pos_uv[t]] = v[t] if on else nobody
    active_neighbour[pos_vu[t]] = u[t] if on else nobody
    step = 1 if on else -1
    n_active[u[t]] += step
    n_active[v[t]] += step


def latent_edges(
    known: np.ndarray, n: int, per_person: float, triadic_share: float, rng: np.random.Generator
) -> np.ndarray:
    """Possible new ties: friends of friends (triadic closure) and strangers, none already known.

    Triadic candidates are oversampled because many friends of friends are friends already.
    """
    m = int(round(n * per_person / 2))
    if m == 0 or n < 3 or len(known) == 0:
        return np.empty((0, 2), dtype=np.int64)
    src = np.concatenate([known[:, 0], known[:, 1]])
    dst = np.concatenate([known[:, 1], known[:, 0]])
    nbr = dst[np.argsort(src, kind="stable")]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    deg = np.diff(indptr)
    known_key = np.sort(known[:, 0] * n + known[:, 1])

    def fresh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        cand = _clean(a, b, n)
        key = cand[:, 0] * n + cand[:, 1]
        return cand[~sorted_contains(known_key, key)]

    m_tri = int(round(m * triadic_share))
    tri = np.empty((0, 2), dtype=np.int64)
    for _ in range(6):  # a few rounds reach the target unless friends of friends are scarce
        k = 3 * (m_tri - len(tri)) + 16
        a = rng.integers(0, n, size=k)
        a = a[deg[a] > 0]
        x = nbr[indptr[a] + (rng.random(a.size) * deg[a]).astype(np.int64)]
        y = nbr[indptr[x] + (rng.random(x.size) * deg[x]).astype(np.int64)]  # x is a's tie: deg[x] > 0
        tri = fresh(np.concatenate([tri[:, 0], a]), np.concatenate([tri[:, 1], y]))
        if len(tri) >= m_tri:
            break
    tri = tri[rng.permutation(len(tri))[:m_tri]]
    strangers = fresh(rng.integers(0, n, size=m - len(tri)), rng.integers(0, n, size=m - len(tri)))
    return _clean(np.concatenate([tri[:, 0], strangers[:, 0]]), np.concatenate([tri[:, 1], strangers[:, 1]]), n)


def build_network(params: NetworkParams, n: int, rng: np.random.Generator, graph: nx.Graph | None = None) -> TieNetwork:
    """Known ties from the chosen generator, file or graph, plus latent ties; all validated first."""
    if graph is not None:
        known = graph_edges(graph, n)
    elif params.kind == "edgelist":
        known = read_edgelist(params.edgelist_path, n)
    elif params.kind == "scale_free":
        known = scale_free_edges(n, params.mean_degree, params.powerlaw_exponent, rng)
    else:
        known = small_world_edges(n, params.mean_degree, params.rewire_prob, rng)
    latent = latent_edges(known, n, params.latent_ties_per_person, params.triadic_share, rng)
    return TieNetwork(n, known, latent)
