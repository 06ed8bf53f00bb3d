"""Radial feeder data: a frozen dataclass of NumPy arrays extracted by pure functions.

Nodes are labelled 1..N (Baran & Wu); arrays index them 0..N-1, index 0 = node 1 = substation.
Branches are stored parent -> child in breadth-first order from the substation, so a parent
always appears before its children.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np

from core.feeders import FeederFileError, FeederTables, ieee123_tables, pandapower_tables, read_feeder_file

__all__ = ["FeederData", "FeederDataError", "feeder_from_feeder_tables", "feeder_from_file", "feeder_from_tables",
           "ieee123", "ieee33bw"]


class FeederDataError(ValueError):
    """Bad feeder data; the message names the feeder, the element and the bad value."""


@dataclass(frozen=True)
class FeederData:
    """Radial feeder, branches in BFS order (parents first)."""

    name: str
    base_kv: float  # nominal line-to-line voltage [kV]
    n_nodes: int  # N; nodes labelled 1..N, array index 0 = node 1 = substation
    from_idx: np.ndarray  # (B,) int, 0-based parent node index of each branch
    to_idx: np.ndarray  # (B,) int, 0-based child node index of each branch
    r_ohm: np.ndarray  # (B,) series resistance [ohm]
    x_ohm: np.ndarray  # (B,) series reactance [ohm]
    i_max_ka: np.ndarray  # (B,) thermal limit [kA]; np.inf where none
    p_load_mw: np.ndarray  # (N,) base (peak-hour) active load per node [MW]
    q_load_mvar: np.ndarray  # (N,) base reactive load per node [MVAr]
    #: (B,) off-nominal ratio of an ideal transformer at each branch's sending end (a fixed regulator tap):
    #: |V| after it = tap_ratio * |V_from|, then the series impedance; None = 1 everywhere
    tap_ratio: np.ndarray | None = None

    def __post_init__(self) -> None:
        tap = np.ones(self.from_idx.shape[0]) if self.tap_ratio is None else np.asarray(self.tap_ratio, dtype=float)
        object.__setattr__(self, "tap_ratio", tap)

    @property
    def taps(self) -> np.ndarray:
        """(B,) tap ratios (1 = a plain line)."""
        assert self.tap_ratio is not None
        return self.tap_ratio

    @property
    def n_branches(self) -> int:
        return int(self.from_idx.shape[0])

    def branch_label(self, b: int) -> str:
        """1-based 'from-to' label of branch b, as used in error messages."""
        return f"{int(self.from_idx[b]) + 1}-{int(self.to_idx[b]) + 1}"


def _finite_positive(feeder: str, what: str, name: str, value: float) -> None:
    if not np.isfinite(value) or value <= 0.0:
        raise FeederDataError(f"feeder '{feeder}' {what}: {name}={value!r} must be > 0 and finite")


def feeder_from_tables(
    name: str,
    base_kv: float,
    branches: Sequence[Mapping[str, Any]],
    loads: Sequence[Mapping[str, Any]],
    n_nodes: int | None = None,
) -> FeederData:
    """Validate 1-based branch/load tables and return a FeederData in BFS order.

    branches: dicts {from_node, to_node, r_ohm, x_ohm, i_max_ka (optional, inf if absent/None),
    tap_ratio (optional, 1 if absent: a fixed tap at the end nearer node 1)}.
    loads: dicts {node, p_mw, q_mvar}; several rows on one node are summed.
    n_nodes: N if known; otherwise N = number of distinct node labels in `branches`,
    which must then be exactly 1..N.
    """
    _finite_positive(name, "base voltage", "base_kv", float(base_kv))
    if len(branches) == 0:
        raise FeederDataError(f"feeder '{name}': no branches")
    labels: set[int] = set()
    rows: list[tuple[int, int, float, float, float, float]] = []
    for br in branches:
        f, t = int(br["from_node"]), int(br["to_node"])
        tag = f"branch {f}-{t}"
        r, x = float(br["r_ohm"]), float(br["x_ohm"])
        _finite_positive(name, tag, "r_ohm", r)
        _finite_positive(name, tag, "x_ohm", x)
        i_max = br.get("i_max_ka")
        i_max_ka = np.inf if i_max is None else float(i_max)
        if np.isnan(i_max_ka) or i_max_ka <= 0.0:
            raise FeederDataError(f"feeder '{name}' {tag}: i_max_ka={i_max_ka!r} must be > 0")
        tap = float(br.get("tap_ratio", 1.0))
        if not np.isfinite(tap) or not 0.5 <= tap <= 1.5:
            raise FeederDataError(f"feeder '{name}' {tag}: tap_ratio={tap!r} must be in [0.5, 1.5]")
        if f == t:
            raise FeederDataError(f"feeder '{name}' {tag}: self-loop on node {f}")
        labels.update((f, t))
        rows.append((f, t, r, x, i_max_ka, tap))

    if n_nodes is None:
        n_nodes = len(labels)
    for lab in sorted(labels):
        if not 1 <= lab <= n_nodes:
            raise FeederDataError(f"feeder '{name}': unknown node {lab} (labels must be 1..{n_nodes})")

    # Orient the tree from node 1 by BFS; a union-find pass first names the branch closing a loop.
    parent_of = list(range(n_nodes + 1))

    def root(a: int) -> int:
        while parent_of[a] != a:
            parent_of[a] = parent_of[parent_of[a]]
            a = parent_of[a]
        return a

    adj: dict[int, list[int]] = {k: [] for k in range(1, n_nodes + 1)}
    for k, (f, t, *_rest) in enumerate(rows):
        rf, rt = root(f), root(t)
        if rf == rt:
            raise FeederDataError(f"feeder '{name}' not radial: branch {f}-{t} closes a loop")
        parent_of[rf] = rt
        adj[f].append(k)
        adj[t].append(k)
    seen = {1}
    order: list[tuple[int, int, int]] = []  # (parent, child, row)
    queue = deque([1])
    while queue:
        u = queue.popleft()
        for k in adj[u]:
            f, t = rows[k][0], rows[k][1]
            v = t if f == u else f
            if v not in seen:
                if rows[k][5] != 1.0 and f != u:
                    raise FeederDataError(f"feeder '{name}' branch {f}-{t}: its tap (tap_ratio={rows[k][5]}) must "
                                          f"be at the end nearer node 1, node {u}, not {f}")
                seen.add(v)
                order.append((u, v, k))
                queue.append(v)
    missing = [k for k in range(1, n_nodes + 1) if k not in seen]
    if missing:
        raise FeederDataError(
            f"feeder '{name}' not radial: node {missing[0]} is not connected to node 1 "
            f"({len(missing)} node(s) disconnected)"
        )

    p_load = np.zeros(n_nodes)
    q_load = np.zeros(n_nodes)
    for ld in loads:
        node = int(ld["node"])
        if not 1 <= node <= n_nodes:
            raise FeederDataError(f"feeder '{name}': load on unknown node {node} (labels 1..{n_nodes})")
        p, q = float(ld["p_mw"]), float(ld["q_mvar"])
        if not (np.isfinite(p) and np.isfinite(q)):
            raise FeederDataError(f"feeder '{name}' load at node {node}: p_mw={p!r}, q_mvar={q!r} not finite")
        p_load[node - 1] += p
        q_load[node - 1] += q

    return FeederData(
        name=name,
        base_kv=float(base_kv),
        n_nodes=n_nodes,
        from_idx=np.array([o[0] - 1 for o in order], dtype=int),
        to_idx=np.array([o[1] - 1 for o in order], dtype=int),
        r_ohm=np.array([rows[o[2]][2] for o in order]),
        x_ohm=np.array([rows[o[2]][3] for o in order]),
        i_max_ka=np.array([rows[o[2]][4] for o in order]),
        p_load_mw=p_load,
        q_load_mvar=q_load,
        tap_ratio=np.array([rows[o[2]][5] for o in order]),
    )


def feeder_from_feeder_tables(name: str, tables: FeederTables) -> FeederData:
    """The feeder of ``tables`` (``core.feeders``) validated; errors name the tables' source file."""
    try:
        return feeder_from_tables(name, tables.base_kv, tables.branches, tables.loads, n_nodes=tables.n_nodes)
    except FeederDataError as exc:
        raise FeederDataError(f"{exc} (from {tables.source})") from exc


def feeder_from_file(path: str, name: str | None = None) -> FeederData:
    """A feeder from a pandapower JSON or MATPOWER .m file (``core.feeders.read_feeder_file``)."""
    from pathlib import Path

    try:
        tables = read_feeder_file(path)
    except FeederFileError as exc:
        raise FeederDataError(str(exc)) from exc
    return feeder_from_feeder_tables(name or Path(path).stem, tables)


@cache
def _case33bw_tables() -> FeederTables:
    import pandapower.networks as pn

    return pandapower_tables(pn.case33bw(), "pandapower case33bw")


def ieee33bw(name: str = "ieee33", i_max_ka: float | None = None) -> FeederData:
    """IEEE 33-bus feeder of Baran & Wu (1989, DOI 10.1109/61.25627) from pandapower's case33bw.

    In-service lines only (the 5 tie switches are open), r_ohm = r_ohm_per_km * length_km,
    loads as given (3.715 MW, 2.3 MVAr total). case33bw carries 99999 kA (no limit); pass
    i_max_ka to impose one uniform thermal limit on every branch (a realistic value for a
    12.66 kV overhead feeder is ~0.4 kA; the base-case head current is ~0.2 kA). None = no limit.
    """
    data = feeder_from_feeder_tables(name, _case33bw_tables())
    return replace(data, i_max_ka=np.full(data.n_branches, np.inf if i_max_ka is None else float(i_max_ka)))


def ieee123(name: str = "ieee123", i_max_ka: float | None = None) -> FeederData:
    """IEEE 123-node test feeder (IEEE PES Distribution Test Feeders; Kersting 1991, DOI 10.1109/59.119237) as
    the balanced positive-sequence equivalent shipped in ``core/data`` (120 nodes, 4.16 kV, 3.49 MW, 1.92 MVAr of
    load, 0.75 MVAr of capacitors; node labels -> OpenDSS buses in ``ieee123_nodes.csv``). The substation
    voltage of the source's solution is ``core.feeders.IEEE123_V_SUB_PU`` (the head regulator's tap).

    What the balanced equivalent drops: the phases (each 1- or 2-phase lateral becomes a balanced branch
    with the same voltage drop and loss when its load is spread over its phases), the unbalance of loads and
    of mutual coupling, line charging, the per-phase regulator taps and their control (the taps of the
    OpenDSS solution, averaged over the phases of each regulator, are fixed ``tap_ratio`` s), the loads'
    voltage dependence (constant-Z and constant-I loads become constant power at nominal voltage) and the
    capacitors' (fixed injections of their rating). The source has no thermal limits: none by default,
    ``i_max_ka`` imposes one on every branch.
    """
    data = feeder_from_feeder_tables(name, ieee123_tables())
    return data if i_max_ka is None else replace(data, i_max_ka=np.full(data.n_branches, float(i_max_ka)))
