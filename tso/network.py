"""Transmission network data: a frozen dataclass of NumPy arrays extracted from pandapower.

Branches (lines and two-winding transformers) are stored in one set of arrays in
per unit on ``base_mva``; generators include the external grid (slack) first,
then ``net.gen`` in table order.  Nothing here knows about cvxpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


class TransmissionDataError(ValueError):
    """Bad transmission data; the message names the element and the value."""


@dataclass(frozen=True)
class TransmissionData:
    """Transmission network as arrays (branch l goes from ``from_idx[l]`` to ``to_idx[l]``)."""

    name: str
    base_mva: float
    bus_labels: np.ndarray  # (n_bus,) int, 1-based labels
    from_idx: np.ndarray  # (L,) int, 0-based
    to_idx: np.ndarray  # (L,) int, 0-based
    x_pu: np.ndarray  # (L,) series reactance on base_mva (tap ratio folded in)
    r_pu: np.ndarray  # (L,) series resistance on base_mva
    f_max_mw: np.ndarray  # (L,) thermal limit, np.inf where none
    gen_idx: np.ndarray  # (G,) 0-based bus of each generator
    gen_p_min_mw: np.ndarray  # (G,)
    gen_p_max_mw: np.ndarray  # (G,)
    gen_ramp_mw_per_h: np.ndarray  # (G,)
    gen_c1_usd_per_mwh: np.ndarray  # (G,) linear cost
    gen_c2_usd_per_mw2h: np.ndarray  # (G,) quadratic cost: c2 * p^2 in $/h
    load_p_mw: np.ndarray  # (n_bus,) base (peak) active load
    ref_idx: int = 0  # 0-based reference (slack) bus, theta = 0

    @property
    def n_bus(self) -> int:
        return int(self.bus_labels.shape[0])

    @property
    def n_branch(self) -> int:
        return int(self.from_idx.shape[0])

    @property
    def n_gen(self) -> int:
        return int(self.gen_idx.shape[0])

    def branch_label(self, line: int) -> str:
        """Human name of branch ``line``: ``"branch 3 (bus 2-4)"`` with 1-based bus labels."""
        f, t = int(self.from_idx[line]), int(self.to_idx[line])
        return f"branch {line} (bus {self.bus_labels[f]}-{self.bus_labels[t]})"

    def incidence(self) -> np.ndarray:
        """Branch-bus incidence A (L, n_bus): +1 at the from bus, -1 at the to bus."""
        a = np.zeros((self.n_branch, self.n_bus))
        rows = np.arange(self.n_branch)
        a[rows, self.from_idx] = 1.0
        a[rows, self.to_idx] = -1.0
        return a

    def susceptance_pu(self) -> np.ndarray:
        """b_l = 1 / x_l (p.u.)."""
        return 1.0 / self.x_pu

    def ptdf(self) -> np.ndarray:
        """PTDF (L, n_bus): flow change in MW per MW injected at a bus and withdrawn at ``ref_idx``."""
        a = self.incidence()
        b = self.susceptance_pu()
        b_bus = a.T @ (b[:, None] * a)
        keep = np.arange(self.n_bus) != self.ref_idx
        x_bus = np.zeros((self.n_bus, self.n_bus))
        x_bus[np.ix_(keep, keep)] = np.linalg.inv(b_bus[np.ix_(keep, keep)])
        return (b[:, None] * a) @ x_bus

    def __post_init__(self) -> None:
        validate_transmission(self)


def validate_transmission(data: TransmissionData) -> None:
    """Raise TransmissionDataError naming the first bad element: x > 0 and finite, r >= 0, connected, ..."""
    n, n_l, n_g = data.n_bus, data.n_branch, data.n_gen
    if not np.isfinite(data.base_mva) or data.base_mva <= 0:
        raise TransmissionDataError(f"{data.name}: base_mva must be positive, got {data.base_mva}")
    for key, arr, size in (
        ("to_idx", data.to_idx, n_l),
        ("x_pu", data.x_pu, n_l),
        ("r_pu", data.r_pu, n_l),
        ("f_max_mw", data.f_max_mw, n_l),
        ("gen_p_min_mw", data.gen_p_min_mw, n_g),
        ("gen_p_max_mw", data.gen_p_max_mw, n_g),
        ("gen_ramp_mw_per_h", data.gen_ramp_mw_per_h, n_g),
        ("gen_c1_usd_per_mwh", data.gen_c1_usd_per_mwh, n_g),
        ("gen_c2_usd_per_mw2h", data.gen_c2_usd_per_mw2h, n_g),
        ("load_p_mw", data.load_p_mw, n),
    ):
        if np.shape(arr) != (size,):
            raise TransmissionDataError(f"{data.name}: {key} has shape {np.shape(arr)}, expected ({size},)")
    for key, idx in (("from_idx", data.from_idx), ("to_idx", data.to_idx), ("gen_idx", data.gen_idx)):
        bad = np.flatnonzero((idx < 0) | (idx >= n))
        if bad.size:
            raise TransmissionDataError(
                f"{data.name}: {key}[{bad[0]}] = {idx[bad[0]]} is outside 0..{n - 1}"
            )
    if not 0 <= data.ref_idx < n:
        raise TransmissionDataError(f"{data.name}: ref_idx {data.ref_idx} is outside 0..{n - 1}")
    bad = np.flatnonzero(~np.isfinite(data.x_pu) | (data.x_pu <= 0))
    if bad.size:
        line = int(bad[0])
        raise TransmissionDataError(
            f"{data.name}: {data.branch_label(line)} has x_pu = {data.x_pu[line]}; need finite x > 0"
        )
    bad = np.flatnonzero(~np.isfinite(data.r_pu) | (data.r_pu < 0))
    if bad.size:
        line = int(bad[0])
        raise TransmissionDataError(
            f"{data.name}: {data.branch_label(line)} has r_pu = {data.r_pu[line]}; need finite r >= 0"
        )
    bad = np.flatnonzero(np.isnan(data.f_max_mw) | (data.f_max_mw <= 0))
    if bad.size:
        line = int(bad[0])
        raise TransmissionDataError(
            f"{data.name}: {data.branch_label(line)} has f_max_mw = {data.f_max_mw[line]}; need > 0"
        )
    bad = np.flatnonzero(data.from_idx == data.to_idx)
    if bad.size:
        raise TransmissionDataError(f"{data.name}: {data.branch_label(int(bad[0]))} is a self-loop")
    for key in ("gen_p_min_mw", "gen_p_max_mw", "gen_ramp_mw_per_h", "gen_c1_usd_per_mwh",
                "gen_c2_usd_per_mw2h"):
        arr = getattr(data, key)
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            g = int(bad[0])
            raise TransmissionDataError(f"{data.name}: generator {g} has {key} = {arr[g]}")
    bad = np.flatnonzero(data.gen_p_min_mw > data.gen_p_max_mw)
    if bad.size:
        g = int(bad[0])
        raise TransmissionDataError(
            f"{data.name}: generator {g} has gen_p_min_mw {data.gen_p_min_mw[g]} > "
            f"gen_p_max_mw {data.gen_p_max_mw[g]}"
        )
    bad = np.flatnonzero((data.gen_ramp_mw_per_h < 0) | (data.gen_c2_usd_per_mw2h < 0))
    if bad.size:
        g = int(bad[0])
        raise TransmissionDataError(
            f"{data.name}: generator {g} needs ramp >= 0 and c2 >= 0, got "
            f"{data.gen_ramp_mw_per_h[g]} MW/h and {data.gen_c2_usd_per_mw2h[g]} $/MW2h"
        )
    bad = np.flatnonzero(~np.isfinite(data.load_p_mw))
    if bad.size:
        raise TransmissionDataError(
            f"{data.name}: bus {data.bus_labels[bad[0]]} has load_p_mw = {data.load_p_mw[bad[0]]}"
        )
    graph = coo_matrix((np.ones(n_l), (data.from_idx, data.to_idx)), shape=(n, n))
    n_comp, comp = connected_components(graph, directed=False)
    if n_comp > 1:
        island = np.flatnonzero(comp != comp[data.ref_idx])
        raise TransmissionDataError(
            f"{data.name}: network is not connected; bus {data.bus_labels[island[0]]} "
            f"is not connected to reference bus {data.bus_labels[data.ref_idx]} ({n_comp} islands)"
        )


def _col(df: pd.DataFrame, key: str, default: float) -> np.ndarray:
    if key in df.columns:
        return df[key].to_numpy(dtype=float)
    return np.full(len(df), default)


def _branch_arrays(net: pp.pandapowerNet, pos: dict[int, int]) -> tuple[np.ndarray, ...]:
    """(from_idx, to_idx, r_pu, x_pu, f_max_mw) for in-service lines then transformers."""
    base_mva = float(net.sn_mva)
    vn_kv = net.bus.vn_kv.to_dict()
    line = net.line[net.line.in_service.astype(bool)]
    par = _col(line, "parallel", 1.0)
    l_from = line.from_bus.to_numpy()
    z_base = np.array([vn_kv[b] for b in l_from]) ** 2 / base_mva
    l_r = line.r_ohm_per_km.to_numpy(float) * line.length_km.to_numpy(float) / par / z_base
    l_x = line.x_ohm_per_km.to_numpy(float) * line.length_km.to_numpy(float) / par / z_base
    i_max = line.max_i_ka.to_numpy(float) * _col(line, "df", 1.0) * par
    loading = np.nan_to_num(_col(line, "max_loading_percent", 100.0), nan=100.0) / 100.0
    l_fmax = np.sqrt(3.0) * np.array([vn_kv[b] for b in l_from]) * i_max * loading
    l_fmax = np.where(np.isfinite(l_fmax) & (l_fmax > 0), l_fmax, np.inf)

    trafo = net.trafo[net.trafo.in_service.astype(bool)] if len(net.trafo) else net.trafo
    if len(trafo):
        shift = np.nan_to_num(_col(trafo, "shift_degree", 0.0))
        bad = np.flatnonzero(shift != 0)
        if bad.size:
            raise TransmissionDataError(
                f"{net.name or 'net'}: trafo {trafo.index[bad[0]]} has shift_degree {shift[bad[0]]}; "
                "phase shifters are not modelled"
            )
        par_t = _col(trafo, "parallel", 1.0)
        sn = trafo.sn_mva.to_numpy(float)
        vn_hv_bus = np.array([vn_kv[b] for b in trafo.hv_bus])
        vn_lv_bus = np.array([vn_kv[b] for b in trafo.lv_bus])
        # impedance referred to the hv side, then per unit on the hv bus voltage
        z_ohm = trafo.vk_percent.to_numpy(float) / 100.0 * trafo.vn_hv_kv.to_numpy(float) ** 2 / sn
        r_ohm = trafo.vkr_percent.to_numpy(float) / 100.0 * trafo.vn_hv_kv.to_numpy(float) ** 2 / sn
        x_ohm = np.sqrt(np.maximum(z_ohm**2 - r_ohm**2, 0.0))
        z_base_t = vn_hv_bus**2 / base_mva
        steps = np.nan_to_num(_col(trafo, "tap_pos", 0.0) - _col(trafo, "tap_neutral", 0.0))
        tap = 1.0 + steps * np.nan_to_num(_col(trafo, "tap_step_percent", 0.0)) / 100.0
        side_lv = (trafo["tap_side"] == "lv").to_numpy() if "tap_side" in trafo else np.zeros(len(sn), bool)
        tap = np.where(side_lv, 1.0 / tap, tap)
        # off-nominal ratio: (rated hv / bus hv) / (rated lv / bus lv) times the tap; DC uses b = 1/(x tau)
        tau = trafo.vn_hv_kv.to_numpy(float) / vn_hv_bus / (trafo.vn_lv_kv.to_numpy(float) / vn_lv_bus) * tap
        t_x = x_ohm / z_base_t / par_t * tau
        t_r = r_ohm / z_base_t / par_t
        loading_t = np.nan_to_num(_col(trafo, "max_loading_percent", 100.0), nan=100.0) / 100.0
        t_fmax = sn * par_t * _col(trafo, "df", 1.0) * loading_t
        t_fmax = np.where(np.isfinite(t_fmax) & (t_fmax > 0), t_fmax, np.inf)
        t_from, t_to = trafo.hv_bus.to_numpy(), trafo.lv_bus.to_numpy()
    else:
        t_x = t_r = t_fmax = np.zeros(0)
        t_from = t_to = np.zeros(0, int)

    frm = np.array([pos[b] for b in np.concatenate([l_from, t_from])], dtype=int)
    to = np.array([pos[b] for b in np.concatenate([line.to_bus.to_numpy(), t_to])], dtype=int)
    return frm, to, np.concatenate([l_r, t_r]), np.concatenate([l_x, t_x]), np.concatenate([l_fmax, t_fmax])


def transmission_from_pandapower(
    name: str, net: pp.pandapowerNet, cost_scale: float = 1.0, ramp_frac_per_h: float = 0.3
) -> TransmissionData:
    """Extract a TransmissionData from a pandapower net.

    Costs come from ``net.poly_cost`` (cp1 in $/MWh, cp2 in $/MW^2h) times ``cost_scale``; the
    ramp limit is ``ramp_frac_per_h * p_max`` in MW/h.  Bus labels are ``net.bus.name`` when numeric,
    else index + 1.
    """
    if not np.isfinite(cost_scale) or cost_scale <= 0:
        raise TransmissionDataError(f"{name}: cost_scale must be positive, got {cost_scale}")
    if not np.isfinite(ramp_frac_per_h) or ramp_frac_per_h < 0:
        raise TransmissionDataError(f"{name}: ramp_frac_per_h must be >= 0, got {ramp_frac_per_h}")
    bus = net.bus[net.bus.in_service.astype(bool)]
    pos = {int(b): i for i, b in enumerate(bus.index)}
    try:
        labels = bus.name.astype(int).to_numpy()
    except (TypeError, ValueError):
        labels = bus.index.to_numpy(dtype=int) + 1
    frm, to, r_pu, x_pu, f_max = _branch_arrays(net, pos)

    ext = net.ext_grid[net.ext_grid.in_service.astype(bool)]
    gen = net.gen[net.gen.in_service.astype(bool)]
    if len(ext) == 0:
        raise TransmissionDataError(f"{name}: no in-service ext_grid to act as reference bus")
    units = [("ext_grid", int(i), int(b)) for i, b in zip(ext.index, ext.bus, strict=True)]
    units += [("gen", int(i), int(b)) for i, b in zip(gen.index, gen.bus, strict=True)]
    cost = net.poly_cost.set_index(["et", "element"])
    tables = {"ext_grid": ext, "gen": gen}
    g_bus, p_min, p_max, c1, c2 = [], [], [], [], []
    for et, i, b in units:
        if (et, i) not in cost.index:
            raise TransmissionDataError(f"{name}: {et} {i} at bus {b} has no poly_cost entry")
        row = cost.loc[(et, i)]
        g_bus.append(pos[b])
        p_min.append(float(tables[et].at[i, "min_p_mw"]))
        p_max.append(float(tables[et].at[i, "max_p_mw"]))
        c1.append(float(row["cp1_eur_per_mw"]) * cost_scale)
        c2.append(float(row["cp2_eur_per_mw2"]) * cost_scale)
    p_max_arr = np.array(p_max)

    load = net.load[net.load.in_service.astype(bool)]
    load_p = np.zeros(len(bus))
    np.add.at(load_p, [pos[b] for b in load.bus], (load.p_mw * _col(load, "scaling", 1.0)).to_numpy(float))

    return TransmissionData(
        name=name,
        base_mva=float(net.sn_mva),
        bus_labels=labels,
        from_idx=frm,
        to_idx=to,
        x_pu=x_pu,
        r_pu=r_pu,
        f_max_mw=f_max,
        gen_idx=np.array(g_bus, dtype=int),
        gen_p_min_mw=np.array(p_min),
        gen_p_max_mw=p_max_arr,
        gen_ramp_mw_per_h=ramp_frac_per_h * p_max_arr,
        gen_c1_usd_per_mwh=np.array(c1),
        gen_c2_usd_per_mw2h=np.array(c2),
        load_p_mw=load_p,
        ref_idx=pos[int(ext.bus.iloc[0])],
    )


def ieee30(name: str = "ieee30", cost_scale: float = 1.0) -> TransmissionData:
    """IEEE 30-bus (MATPOWER case30 via pandapower), 100 MVA base, 189.2 MW peak load."""
    return transmission_from_pandapower(name, pn.case30(), cost_scale=cost_scale)


def ieee118(name: str = "ieee118", cost_scale: float = 1.0) -> TransmissionData:
    """IEEE 118-bus (pandapower case118, 13 transformers), 4242 MW peak load."""
    return transmission_from_pandapower(name, pn.case118(), cost_scale=cost_scale)
