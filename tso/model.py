"""Multi-period DC OPF with a convex quadratic loss approximation (variables and constraints only).

Per period t, with incidence A (L, n) (+1 from bus, -1 to bus), b = 1/x (p.u.) and S = base_mva:

    f      = S * b * (A theta)                          branch flow from -> to, MW
    loss_l >= (sqrt(r_l / S) f_l)^2                      ("loss.cone"; loss_pu >= r_pu f_pu^2)
    Cg pg + Cw w + dr - load - Cd p_dso - 0.5 |A|^T loss = A^T f      ("balance", n x T)
    |f| <= f_max, p_min <= pg <= p_max, |pg_t - pg_{t-1}| <= ramp * dt_h,
    0 <= w <= wind_avail, 0 <= dr <= dr_max, theta_ref = 0.

For conditioning (Clarabel reaches "optimal" on IEEE 118 only this way) the angle variable is
``theta_scaled = S * theta`` (so flow coefficients are b, not S b) and the cone is written on
``sqrt(r/S) f``, whose magnitude is that of the loss in MW.

The cone is tight wherever half the sum of the end-bus prices is positive, since a
larger loss only costs then.  ``build_tso_model`` returns a TsoModel that another
module can put, alone or with feeder models, into one cvxpy Problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from core.errors import SolveError
from core.solver import value
from tso.network import TransmissionData, TransmissionDataError


@dataclass(frozen=True)
class TsoInputs:
    """Time series for one dispatch day; arrays are (..., T)."""

    dt_h: float
    load_p_mw: np.ndarray  # (n_bus, T) fixed transmission-level demand (excluding DSO feeders)
    wind_bus_idx: np.ndarray  # (W,) 0-based bus of each wind farm
    wind_avail_mw: np.ndarray  # (W, T) available wind power
    wind_curtail_usd_per_mwh: float  # penalty on curtailed wind energy
    dr_max_mw: np.ndarray  # (n_bus, T) demand that may be curtailed
    dr_cost_usd_per_mwh: float  # cost of curtailed demand
    dso_bus_idx: np.ndarray  # (K,) 0-based buses where DSO feeders attach

    @property
    def n_periods(self) -> int:
        return int(np.shape(self.load_p_mw)[1])

    def __post_init__(self) -> None:
        if not np.isfinite(self.dt_h) or self.dt_h <= 0:
            raise TransmissionDataError(f"TsoInputs: dt_h must be positive, got {self.dt_h}")
        if np.ndim(self.load_p_mw) != 2:
            raise TransmissionDataError(
                f"TsoInputs: load_p_mw must be (n_bus, T), got {np.shape(self.load_p_mw)}"
            )
        n, t = np.shape(self.load_p_mw)
        w = np.shape(self.wind_bus_idx)[0] if np.ndim(self.wind_bus_idx) == 1 else -1
        for key, arr, shape in (
            ("wind_bus_idx", self.wind_bus_idx, (w,)),
            ("wind_avail_mw", self.wind_avail_mw, (w, t)),
            ("dr_max_mw", self.dr_max_mw, (n, t)),
        ):
            if np.shape(arr) != shape:
                raise TransmissionDataError(f"TsoInputs: {key} has shape {np.shape(arr)}, expected {shape}")
        if np.ndim(self.dso_bus_idx) != 1 or np.shape(self.dso_bus_idx)[0] == 0:
            raise TransmissionDataError(
                f"TsoInputs: dso_bus_idx must be a non-empty (K,) array, got shape "
                f"{np.shape(self.dso_bus_idx)}"
            )
        for key, arr in (("load_p_mw", self.load_p_mw), ("wind_avail_mw", self.wind_avail_mw),
                         ("dr_max_mw", self.dr_max_mw)):
            bad = np.argwhere(~np.isfinite(arr))
            if bad.size:
                at = tuple(int(i) for i in bad[0])
                raise TransmissionDataError(f"TsoInputs: {key}[{at}] = {arr[at]}")
        for key, arr in (("wind_avail_mw", self.wind_avail_mw), ("dr_max_mw", self.dr_max_mw)):
            bad = np.argwhere(arr < 0)
            if bad.size:
                at = tuple(int(i) for i in bad[0])
                raise TransmissionDataError(f"TsoInputs: {key}[{at}] = {arr[at]} is negative")
        for key in ("wind_curtail_usd_per_mwh", "dr_cost_usd_per_mwh"):
            if not np.isfinite(getattr(self, key)):
                raise TransmissionDataError(f"TsoInputs: {key} = {getattr(self, key)}")


def validate_inputs(data: TransmissionData, inputs: TsoInputs) -> None:
    """Check that the inputs fit the network; names the bad bus/wind farm/DSO and its value."""
    n = data.n_bus
    if inputs.load_p_mw.shape[0] != n:
        raise TransmissionDataError(
            f"{data.name}: load_p_mw has {inputs.load_p_mw.shape[0]} rows, network has {n} buses"
        )
    for what, idx in (("wind farm", inputs.wind_bus_idx), ("DSO", inputs.dso_bus_idx)):
        bad = np.flatnonzero((np.asarray(idx) < 0) | (np.asarray(idx) >= n))
        if bad.size:
            k = int(bad[0])
            raise TransmissionDataError(
                f"{data.name}: {what} {k} is at bus index {idx[k]}, outside 0..{n - 1} "
                f"(bus labels {data.bus_labels[0]}..{data.bus_labels[-1]})"
            )


@dataclass(frozen=True)
class TsoDispatch:
    """Numerical TSO results (MW, rad, $/MWh, $)."""

    gen_p_mw: np.ndarray  # (G, T)
    wind_p_mw: np.ndarray  # (W, T) used wind
    wind_avail_mw: np.ndarray  # (W, T)
    dr_p_mw: np.ndarray  # (n_bus, T) curtailed demand
    flow_mw: np.ndarray  # (L, T) from -> to
    loss_mw: np.ndarray  # (L, T)
    theta_rad: np.ndarray  # (n_bus, T)
    p_dso_mw: np.ndarray  # (K, T) positive TSO -> DSO
    lmp_usd_per_mwh: np.ndarray  # (n_bus, T) d cost / d load / dt_h
    price_dso_usd_per_mwh: np.ndarray  # (K, T) LMP at the DSO buses
    lmp_energy_usd_per_mwh: np.ndarray  # (n_bus, T) LMP at the reference bus
    lmp_loss_usd_per_mwh: np.ndarray  # (n_bus, T) -lambda_ref * dLoss/dP_inj
    lmp_congestion_usd_per_mwh: np.ndarray  # (n_bus, T) the rest
    cost_usd: dict[str, float]
    transmission_loss_mwh: float


def marginal_loss_factors(data: TransmissionData, flow_mw: np.ndarray, losses: bool = True) -> np.ndarray:
    """dLoss/dP_i (n_bus, T): loss change per MW injected at bus i and withdrawn at the reference bus.

    With loss = (r/S) f^2 and losses withdrawn half at each end bus, f = PTDF (P - H loss),
    H = 0.5 |A|^T, so df = (I + PTDF H D)^-1 PTDF dP with D = diag(2 r f / S), and dLoss = d^T df.
    """
    n_l, t = flow_mw.shape
    if not losses:
        return np.zeros((data.n_bus, t))
    ptdf = data.ptdf()
    h = 0.5 * np.abs(data.incidence()).T  # (n, L)
    d = 2.0 * data.r_pu[:, None] * flow_mw / data.base_mva  # (L, T)
    ph = ptdf @ h  # (L, L)
    m = np.eye(n_l)[None, :, :] + ph[None, :, :] * d.T[:, None, :]  # (T, L, L): I + PTDF H diag(d_t)
    y = np.linalg.solve(np.transpose(m, (0, 2, 1)), d.T[:, :, None])[:, :, 0]  # (T, L)
    return (y @ ptdf).T


@dataclass
class TsoModel:
    """cvxpy variables, named constraints and cost terms of the TSO; no Problem."""

    data: TransmissionData
    inputs: TsoInputs
    losses: bool
    variables: dict[str, cp.Variable]
    constraints: dict[str, cp.Constraint]
    cost_terms: dict[str, cp.Expression]  # $ over the horizon
    p_dso_mw: cp.Variable  # (K, T) boundary withdrawal, positive TSO -> DSO
    expressions: dict[str, cp.Expression] = field(default_factory=dict)  # "flow_mw", "loss_mw", ...

    def cost_usd(self) -> cp.Expression:
        """Total TSO cost in $ over the horizon (sum of ``cost_terms``)."""
        return cp.sum(cp.hstack(list(self.cost_terms.values())))

    def hourly_cost_usd(self) -> np.ndarray:
        """(T,) the TSO's cost per period [$] at the current solution (generation, demand response, wind
        curtailment: every term is a sum over periods)."""
        inp, data, dt_h = self.inputs, self.data, float(self.inputs.dt_h)
        pg = value(self.variables["gen_p_mw"])
        cost = dt_h * (data.gen_c1_usd_per_mwh @ pg + data.gen_c2_usd_per_mw2h @ (pg**2))
        cost = cost + inp.dr_cost_usd_per_mwh * dt_h * value(self.variables["dr_p_mw"]).sum(axis=0)
        if "wind_p_mw" in self.variables:
            curtailed = np.asarray(inp.wind_avail_mw, dtype=float) - value(self.variables["wind_p_mw"])
            cost = cost + inp.wind_curtail_usd_per_mwh * dt_h * curtailed.sum(axis=0)
        return np.asarray(cost, dtype=float)

    def extract(self) -> TsoDispatch:
        """Read values and the balance duals after the Problem holding this model was solved."""
        bal = self.constraints["balance"]
        if self.p_dso_mw.value is None or bal.dual_value is None:
            raise SolveError("TSO model has no solution; solve the problem that holds it first", "unsolved")
        data, inputs, dt_h = self.data, self.inputs, self.inputs.dt_h
        t = inputs.n_periods
        # "balance" is written  withdrawals - injections == 0, so its dual is d cost / d withdrawal
        lmp = np.asarray(bal.dual_value) / dt_h
        flow = np.asarray(self.expressions["flow_mw"].value)
        loss = np.asarray(self.expressions["loss_mw"].value) if self.losses else np.zeros_like(flow)
        wind = (np.asarray(self.variables["wind_p_mw"].value) if "wind_p_mw" in self.variables
                else np.zeros((0, t)))
        lf = marginal_loss_factors(data, flow, self.losses)
        energy = np.broadcast_to(lmp[data.ref_idx], lmp.shape).copy()
        loss_comp = -energy * lf
        return TsoDispatch(
            gen_p_mw=np.asarray(self.variables["gen_p_mw"].value),
            wind_p_mw=wind,
            wind_avail_mw=np.asarray(inputs.wind_avail_mw, dtype=float),
            dr_p_mw=np.asarray(self.variables["dr_p_mw"].value),
            flow_mw=flow,
            loss_mw=loss,
            theta_rad=np.asarray(self.variables["theta_scaled"].value) / data.base_mva,
            p_dso_mw=np.asarray(self.p_dso_mw.value),
            lmp_usd_per_mwh=lmp,
            price_dso_usd_per_mwh=lmp[np.asarray(inputs.dso_bus_idx)],
            lmp_energy_usd_per_mwh=energy,
            lmp_loss_usd_per_mwh=loss_comp,
            lmp_congestion_usd_per_mwh=lmp - energy - loss_comp,
            cost_usd={k: float(np.asarray(v.value)) for k, v in self.cost_terms.items()},
            transmission_loss_mwh=float(loss.sum() * dt_h),
        )


def _bus_map(idx: np.ndarray, n_bus: int) -> sp.csr_matrix:
    """(n_bus, len(idx)) 0/1 matrix placing element k at bus idx[k]."""
    k = len(idx)
    return sp.csr_matrix((np.ones(k), (np.asarray(idx, dtype=int), np.arange(k))), shape=(n_bus, k))


def build_tso_model(data: TransmissionData, inputs: TsoInputs, losses: bool = True) -> TsoModel:
    """Create the TSO variables, named constraints and cost terms (see module docstring)."""
    validate_inputs(data, inputs)
    n, n_t, dt_h = data.n_bus, inputs.n_periods, float(inputs.dt_h)
    n_g, n_w, n_k = data.n_gen, len(inputs.wind_bus_idx), len(inputs.dso_bus_idx)
    a = sp.csr_matrix(data.incidence())
    base = data.base_mva

    # angles are carried as base_mva * theta so that flow coefficients are b (p.u.), not base_mva * b
    theta = cp.Variable((n, n_t), name="theta_scaled")  # base_mva * theta_rad
    pg = cp.Variable((n_g, n_t), name="gen_p_mw")
    dr = cp.Variable((n, n_t), name="dr_p_mw")
    p_dso = cp.Variable((n_k, n_t), name="p_dso_mw")
    variables: dict[str, cp.Variable] = {
        "theta_scaled": theta, "gen_p_mw": pg, "dr_p_mw": dr, "p_dso_mw": p_dso,
    }
    cons: dict[str, cp.Constraint] = {}
    expressions: dict[str, cp.Expression] = {}

    flow = sp.diags(data.susceptance_pu()) @ a @ theta  # (L, T) MW
    expressions["flow_mw"] = flow
    injection = _bus_map(data.gen_idx, n) @ pg + dr
    withdrawal = inputs.load_p_mw + _bus_map(inputs.dso_bus_idx, n) @ p_dso + a.T @ flow
    if n_w:
        wind = cp.Variable((n_w, n_t), name="wind_p_mw")
        variables["wind_p_mw"] = wind
        injection = injection + _bus_map(inputs.wind_bus_idx, n) @ wind
        cons["wind.min"] = wind >= 0
        cons["wind.max"] = wind <= inputs.wind_avail_mw
    if losses and np.any(data.r_pu > 0):
        lossy = np.flatnonzero(data.r_pu > 0)
        loss = cp.Variable((len(lossy), n_t), name="loss_mw")
        variables["loss_mw"] = loss
        n_r = len(lossy)
        sel = sp.csr_matrix((np.ones(n_r), (lossy, np.arange(n_r))), shape=(data.n_branch, n_r))
        expressions["loss_mw"] = sel @ loss
        # loss_pu >= r_pu * f_pu^2  <=>  loss_mw >= (r_pu / base) * f_mw^2
        sqrt_r_over_s = np.repeat(np.sqrt(data.r_pu[lossy] / base)[:, None], n_t, axis=1)
        cons["loss.cone"] = cp.square(cp.multiply(sqrt_r_over_s, flow[lossy, :])) <= loss
        withdrawal = withdrawal + (0.5 * abs(a).T @ sel) @ loss
    else:
        losses = False
        expressions["loss_mw"] = cp.Constant(np.zeros((data.n_branch, n_t)))
    cons["balance"] = withdrawal - injection == 0
    cons["theta.ref"] = theta[data.ref_idx, :] == 0

    limited = np.flatnonzero(np.isfinite(data.f_max_mw))
    if limited.size:
        cons["flow.limit"] = cp.abs(flow[limited, :]) <= np.repeat(data.f_max_mw[limited, None], n_t, axis=1)
    cons["gen.min"] = pg >= np.repeat(data.gen_p_min_mw[:, None], n_t, axis=1)
    cons["gen.max"] = pg <= np.repeat(data.gen_p_max_mw[:, None], n_t, axis=1)
    if n_t > 1:
        ramp = np.repeat(data.gen_ramp_mw_per_h[:, None] * dt_h, n_t - 1, axis=1)
        cons["ramp"] = cp.abs(pg[:, 1:] - pg[:, :-1]) <= ramp
    cons["dr.min"] = dr >= 0
    cons["dr.max"] = dr <= inputs.dr_max_mw

    c1 = np.repeat(data.gen_c1_usd_per_mwh[:, None] * dt_h, n_t, axis=1)
    c2 = np.repeat(data.gen_c2_usd_per_mw2h[:, None] * dt_h, n_t, axis=1)
    cost_terms: dict[str, cp.Expression] = {
        "generation": cp.sum(cp.multiply(c1, pg)) + cp.sum(cp.multiply(c2, cp.square(pg))),
        "demand_response": inputs.dr_cost_usd_per_mwh * dt_h * cp.sum(dr),
    }
    if n_w:
        curtailed_mwh = (float(np.sum(inputs.wind_avail_mw)) - cp.sum(variables["wind_p_mw"])) * dt_h
        cost_terms["wind_curtailment"] = inputs.wind_curtail_usd_per_mwh * curtailed_mwh
    else:
        cost_terms["wind_curtailment"] = cp.Constant(0.0)
    return TsoModel(
        data=data,
        inputs=inputs,
        losses=losses,
        variables=variables,
        constraints=cons,
        cost_terms=cost_terms,
        p_dso_mw=p_dso,
        expressions=expressions,
    )
