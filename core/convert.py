"""Conversions between protobuf messages and plain data, in one place (round-trip tested).

Domain code never sees a protobuf type: services and the orchestrator's client call these functions.
Objects going to the wire are read by attribute (duck typing), so this module does not import the
operator packages' internals; objects coming from the wire are the shared core's dataclasses
(``Evaluation``, ``Proposal``, ``SurrogateWeights``) or those below, or, for reports, the operator's own
report dataclass passed in as ``cls``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from core.icnn import SurrogateTerm, SurrogateWeights
from core.rpc import InvalidArgument, scalar, vector
from core.subspace import BoundaryStep, Columns, Evaluation, Merge, Proposal
from gridcoord.v1 import aggregator_pb2, common_pb2, dso_pb2, tno_pb2, tso_pb2

T = TypeVar("T")


def _arr(values: Sequence[float]) -> np.ndarray:
    return np.asarray(list(values), dtype=float)


# --------------------------------------------------------------------------------------------------
# run keys


def run_key(run_id: str, round_: int) -> common_pb2.RunKey:
    return common_pb2.RunKey(run_id=run_id, round=round_)


# --------------------------------------------------------------------------------------------------
# surrogates


def weights_to_proto(weights: SurrogateWeights) -> common_pb2.IcnnWeights:
    w = np.asarray(weights.w, dtype=float)
    return common_pb2.IcnnWeights(n_inputs=w.shape[1], n_hidden=w.shape[0], w=w.ravel().tolist(),
                                  b=np.asarray(weights.b, dtype=float).tolist(),
                                  v=np.asarray(weights.v, dtype=float).tolist(),
                                  a=np.asarray(weights.a, dtype=float).tolist(), c=float(weights.c))


#: largest hidden layer of a surrogate a server embeds (csso uses 24); a bigger one is refused, not built
MAX_HIDDEN = 1024
#: |weight| bound: far above trained surrogates, low enough that W x + b stays representable in a solver
MAX_WEIGHT = 1e9
#: most surrogate terms in one Optimize request (one per other operator; the scale case has 64 feeders)
MAX_OTHERS = 256


def weights_from_proto(msg: common_pb2.IcnnWeights, field: str = "weights") -> SurrogateWeights:
    n, h = int(msg.n_inputs), int(msg.n_hidden)
    if n < 1 or h < 1:
        raise InvalidArgument(f"{field}.n_inputs and {field}.n_hidden must be >= 1 (got {n}, {h})")
    if h > MAX_HIDDEN:
        raise InvalidArgument(f"{field}.n_hidden = {h}: at most {MAX_HIDDEN}")
    w = _arr(vector(f"{field}.w", msg.w, n * h, limit=MAX_WEIGHT)).reshape(h, n)
    return SurrogateWeights(w=w, b=_arr(vector(f"{field}.b", msg.b, h, limit=MAX_WEIGHT)),
                   v=_arr(vector(f"{field}.v", msg.v, h, nonneg=True, limit=MAX_WEIGHT)),
                   a=_arr(vector(f"{field}.a", msg.a, n, limit=MAX_WEIGHT)),
                   c=scalar(f"{field}.c", msg.c, lower=-MAX_WEIGHT * 1e3, upper=MAX_WEIGHT * 1e3))


def others_to_proto(others: Sequence[SurrogateTerm], names: Sequence[str]) -> list[common_pb2.SurrogateTerm]:
    return [common_pb2.SurrogateTerm(operator_id=name, index=np.asarray(idx, dtype=int).tolist(),
                                     weights=weights_to_proto(w)) for (idx, w), name in zip(others, names, strict=True)]


def others_from_proto(terms: Sequence[common_pb2.SurrogateTerm], n_boundary: int) -> list[SurrogateTerm]:
    if len(terms) > MAX_OTHERS:
        raise InvalidArgument(f"others: {len(terms)} surrogate terms, at most {MAX_OTHERS}")
    out = []
    for j, term in enumerate(terms):
        where = f"others[{j}]"
        if not term.HasField("weights"):
            raise InvalidArgument(f"{where}.weights: required")
        weights = weights_from_proto(term.weights, f"{where}.weights")
        idx = np.asarray(list(term.index), dtype=int)
        if idx.size != weights.w.shape[1]:
            raise InvalidArgument(f"{where}.index: {idx.size} entries for a surrogate of {weights.w.shape[1]} inputs")
        if idx.size and (idx.min() < 0 or idx.max() >= n_boundary):
            raise InvalidArgument(f"{where}.index: entries must be in 0..{n_boundary - 1}")
        if idx.size > n_boundary:
            raise InvalidArgument(f"{where}.index: {idx.size} entries, at most {n_boundary} (the boundary's length)")
        out.append((idx, weights))
    return out


# --------------------------------------------------------------------------------------------------
# evaluate / optimize / respond / prox


def evaluation_to_proto(resp: Evaluation) -> common_pb2.EvaluateResponse:
    hourly = [] if resp.hourly_cost_usd is None else np.asarray(resp.hourly_cost_usd, dtype=float).tolist()
    return common_pb2.EvaluateResponse(
        cost_usd=float(resp.cost_usd),
        sensitivity_usd_per_mwh=np.asarray(resp.sensitivity_usd_per_mwh, dtype=float).ravel().tolist(),
        penalty_usd=float(resp.penalty_usd), mismatch_mw=float(resp.mismatch_mw), dt_h=float(resp.dt_h),
        hourly_cost_usd=hourly)


def evaluation_from_proto(msg: common_pb2.EvaluateResponse, shape: tuple[int, ...] | None = None) -> Evaluation:
    sens = _arr(msg.sensitivity_usd_per_mwh)
    return Evaluation(cost_usd=msg.cost_usd, sensitivity_usd_per_mwh=sens.reshape(shape) if shape else sens,
                      penalty_usd=msg.penalty_usd, mismatch_mw=msg.mismatch_mw, dt_h=msg.dt_h,
                      hourly_cost_usd=_arr(msg.hourly_cost_usd) if len(msg.hourly_cost_usd) else None)


def proposal_to_proto(p: Proposal) -> common_pb2.OptimizeResponse:
    sens = [] if p.sensitivity_usd_per_mwh is None else np.asarray(p.sensitivity_usd_per_mwh, dtype=float).tolist()
    return common_pb2.OptimizeResponse(x_mw=np.asarray(p.x, dtype=float).tolist(),
                                       predicted_usd=float(p.predicted_usd), ok=bool(p.ok), cost_usd=float(p.cost_usd),
                                       sensitivity_usd_per_mwh=sens)


def proposal_from_proto(msg: common_pb2.OptimizeResponse) -> Proposal:
    return Proposal(x=_arr(msg.x_mw), predicted_usd=msg.predicted_usd, ok=msg.ok, cost_usd=msg.cost_usd,
                    sensitivity_usd_per_mwh=_arr(msg.sensitivity_usd_per_mwh) if len(msg.sensitivity_usd_per_mwh)
                    else None)


#: most points per DSO in one Merge request (the merge is compiled once per count; csso keeps 10)
MAX_POINTS = 64


def columns_to_proto(key: common_pb2.RunKey, columns: Columns) -> tso_pb2.MergeRequest:
    return tso_pb2.MergeRequest(key=key, dsos=[
        tso_pb2.DsoPoints(n_points=int(np.asarray(x).shape[0]), points_mw=np.asarray(x, dtype=float).ravel().tolist(),
                          costs_usd=np.asarray(c, dtype=float).tolist())
        for x, c in zip(columns.points, columns.costs, strict=True)])


def columns_from_proto(msg: tso_pb2.MergeRequest, n_dso: int, n_periods: int) -> Columns:
    """The DSOs' points, refused naming the field when counts, lengths or values are wrong."""
    if len(msg.dsos) != n_dso:
        raise InvalidArgument(f"dsos: expected {n_dso} entries (one per DSO), got {len(msg.dsos)}")
    counts = {int(d.n_points) for d in msg.dsos}
    if len(counts) != 1:
        raise InvalidArgument(f"dsos[*].n_points: every DSO must send the same number of points, got {sorted(counts)}")
    m = counts.pop()
    if not 1 <= m <= MAX_POINTS:
        raise InvalidArgument(f"dsos[*].n_points = {m}: 1..{MAX_POINTS}")
    pts, costs = [], []
    for k, d in enumerate(msg.dsos):
        pts.append(_arr(vector(f"dsos[{k}].points_mw", d.points_mw, m * n_periods, limit=1e5)).reshape(m, n_periods))
        costs.append(_arr(vector(f"dsos[{k}].costs_usd", d.costs_usd, m, limit=1e12)))
    return Columns(points=tuple(pts), costs=tuple(costs))


def merge_to_proto(m: Merge) -> tso_pb2.MergeResponse:
    return tso_pb2.MergeResponse(x_mw=np.asarray(m.x, dtype=float).tolist(),
                                 theta=np.concatenate([np.asarray(t, dtype=float) for t in m.theta]).tolist(),
                                 bound_usd=float(m.bound_usd), evaluation=evaluation_to_proto(m.evaluation))


def merge_from_proto(msg: tso_pb2.MergeResponse, n_dso: int, shape: tuple[int, ...]) -> Merge:
    theta = _arr(msg.theta).reshape(n_dso, -1)
    return Merge(x=_arr(msg.x_mw), theta=tuple(theta), bound_usd=msg.bound_usd,
                 evaluation=evaluation_from_proto(msg.evaluation, shape))


def boundary_step_to_proto(step: BoundaryStep) -> common_pb2.BoundaryResponse:
    x, cost = step
    return common_pb2.BoundaryResponse(x_mw=np.asarray(x, dtype=float).ravel().tolist(), cost_usd=float(cost))


def boundary_step_from_proto(msg: common_pb2.BoundaryResponse,
                             shape: tuple[int, ...] | None = None) -> BoundaryStep:
    x = _arr(msg.x_mw)
    return (x.reshape(shape) if shape else x), msg.cost_usd


# --------------------------------------------------------------------------------------------------
# reports


def tso_report_to_proto(r: Any) -> tso_pb2.TsoReport:
    price = np.asarray(r.price_dso_usd_per_mwh, dtype=float)
    return tso_pb2.TsoReport(n_periods=price.shape[-1], price_dso_usd_per_mwh=price.ravel().tolist(),
                             cost_usd={k: float(v) for k, v in r.cost_usd.items()},
                             transmission_loss_mwh=float(r.transmission_loss_mwh),
                             wind_p_mw=np.asarray(r.wind_p_mw, dtype=float).tolist(),
                             wind_avail_mw=np.asarray(r.wind_avail_mw, dtype=float).tolist(),
                             penalty_usd=float(r.penalty_usd), mismatch_mw=float(r.mismatch_mw))


def tso_report_from_proto(msg: tso_pb2.TsoReport, cls: Callable[..., T]) -> T:
    t = int(msg.n_periods)
    return cls(price_dso_usd_per_mwh=_arr(msg.price_dso_usd_per_mwh).reshape(-1, t), cost_usd=dict(msg.cost_usd),
               transmission_loss_mwh=msg.transmission_loss_mwh, wind_p_mw=_arr(msg.wind_p_mw),
               wind_avail_mw=_arr(msg.wind_avail_mw), penalty_usd=msg.penalty_usd, mismatch_mw=msg.mismatch_mw)


_NODE_FIELDS = ("p_load_mw", "q_load_mvar", "p_gen_mw", "q_gen_mvar", "p_ev_mw", "v_pu", "q_ev_mvar")
_PERIOD_FIELDS = ("p_import_mw", "q_import_mvar", "loss_mw", "pv_p_mw", "pv_avail_mw", "mt_p_mw", "wind_p_mw",
                  "wind_avail_mw")


def dso_report_to_proto(r: Any) -> dso_pb2.DsoReport:
    v = np.asarray(r.v_pu, dtype=float)
    msg = dso_pb2.DsoReport(n_nodes=v.shape[0], n_periods=v.shape[1],
                            cost_usd={k: float(x) for k, x in r.cost_usd.items()},
                            soc_gap_mva2=float(r.soc_gap_mva2), ev_unmet_mwh=float(r.ev_unmet_mwh),
                            ac_max_voltage_error_pu=float(r.ac_max_voltage_error_pu),
                            ac_loss_error_rel=float(r.ac_loss_error_rel), ac_converged=bool(r.ac_converged),
                            ac_checked=bool(r.ac_checked), penalty_usd=float(r.penalty_usd),
                            mismatch_mw=float(r.mismatch_mw),
                            chance={k: float(x) for k, x in getattr(r, "chance", {}).items()})
    for name in _NODE_FIELDS + _PERIOD_FIELDS:
        getattr(msg, name).extend(np.asarray(getattr(r, name), dtype=float).ravel().tolist())
    return msg


def dso_report_from_proto(msg: dso_pb2.DsoReport, cls: Callable[..., T], feeder_id: str) -> T:
    n, t = int(msg.n_nodes), int(msg.n_periods)
    # a field left empty (q_ev_mvar of a P-only feeder, or a sender without it) is zeros
    fields: dict[str, Any] = {name: _arr(getattr(msg, name)).reshape(n, t) if len(getattr(msg, name))
                              else np.zeros((n, t)) for name in _NODE_FIELDS}
    fields.update({name: _arr(getattr(msg, name)) for name in _PERIOD_FIELDS})
    return cls(feeder_id=feeder_id, cost_usd=dict(msg.cost_usd), soc_gap_mva2=msg.soc_gap_mva2,
               ev_unmet_mwh=msg.ev_unmet_mwh, ac_max_voltage_error_pu=msg.ac_max_voltage_error_pu,
               ac_loss_error_rel=msg.ac_loss_error_rel, ac_checked=msg.ac_checked, ac_converged=msg.ac_converged,
               penalty_usd=msg.penalty_usd, mismatch_mw=msg.mismatch_mw, chance=dict(msg.chance), **fields)


# --------------------------------------------------------------------------------------------------
# aggregator


_ENTRY_FIELDS = ("p_ch_max_mw", "p_dis_max_mw", "e_min_mwh", "e_max_mwh")


def envelope_to_proto(flex: Any, n_periods: int, dt_h: float, stations: Sequence[Any]) -> aggregator_pb2.Envelope:
    """``flex``: the aggregator's envelopes; ``stations``: its stations (id, p_max_kw)."""
    msg = aggregator_pb2.Envelope(n_periods=n_periods, dt_h=dt_h)
    msg.alloc_group.extend(np.asarray(flex.alloc_group, dtype=int).tolist())
    msg.stations.extend([s.station_id for s in stations])
    msg.station_p_max_mw.extend([float(s.p_max_kw) / 1e3 for s in stations])
    msg.node.extend(np.asarray(flex.node, dtype=int).tolist())
    msg.station_id.extend(list(flex.station_id))
    msg.start.extend(np.asarray(flex.start, dtype=int).tolist())
    msg.dwell.extend(np.asarray(flex.dwell, dtype=int).tolist())
    for name in (*_ENTRY_FIELDS, "eta_ch", "eta_dis"):
        getattr(msg, name).extend(np.asarray(getattr(flex, name), dtype=float).tolist())
    return msg


@dataclass(frozen=True)
class EnvelopeData:
    """Envelopes as received by a DSO (the fields its EV model reads)."""

    node: np.ndarray
    station_id: tuple[str, ...]
    start: np.ndarray
    dwell: np.ndarray
    p_ch_max_mw: np.ndarray
    p_dis_max_mw: np.ndarray
    e_min_mwh: np.ndarray
    e_max_mwh: np.ndarray
    eta_ch: np.ndarray
    eta_dis: np.ndarray
    alloc_group: np.ndarray
    stations: tuple[str, ...]
    station_p_max_mw: np.ndarray


def envelope_from_proto(msg: aggregator_pb2.Envelope) -> EnvelopeData:
    e = len(msg.node)
    dwell = np.asarray(list(msg.dwell), dtype=int)
    if dwell.size != e or len(msg.start) != e or len(msg.station_id) != e:
        raise InvalidArgument("envelope: node, station_id, start and dwell must have one entry per envelope")
    w = int(dwell.sum())
    entries = {name: _arr(vector(f"envelope.{name}", getattr(msg, name), w)) for name in _ENTRY_FIELDS}
    group = np.asarray(list(msg.alloc_group), dtype=int) if len(msg.alloc_group) else np.arange(e)
    if group.size != e:
        raise InvalidArgument(f"envelope.alloc_group: expected {e} values, got {group.size}")
    unknown = sorted(set(msg.station_id) - set(msg.stations))
    if unknown:
        raise InvalidArgument(f"envelope.station_id: {unknown} not in envelope.stations")
    return EnvelopeData(node=np.asarray(list(msg.node), dtype=int), station_id=tuple(msg.station_id),
                        start=np.asarray(list(msg.start), dtype=int), dwell=dwell,
                        eta_ch=_arr(vector("envelope.eta_ch", msg.eta_ch, e)),
                        eta_dis=_arr(vector("envelope.eta_dis", msg.eta_dis, e)), alloc_group=group,
                        stations=tuple(msg.stations),
                        station_p_max_mw=_arr(vector("envelope.station_p_max_mw", msg.station_p_max_mw,
                                                     len(msg.stations), nonneg=True)), **entries)


# --------------------------------------------------------------------------------------------------
# transport network operator: station prices in, station arrival envelopes out

_ARRIVAL_FLOATS = ("plug_start_h", "plug_end_h", "need_kwh", "capacity_kwh", "soc_arrival_kwh", "p_charge_kw",
                   "p_discharge_kw", "efficiency")


def station_prices_to_proto(key: common_pb2.RunKey, price_usd_per_mwh: np.ndarray, mode: str, max_iter: int,
                            gap_tol: float) -> tno_pb2.StationPricesRequest:
    price = np.asarray(price_usd_per_mwh, dtype=float)
    return tno_pb2.StationPricesRequest(key=key, n_stations=price.shape[0], n_periods=price.shape[1],
                                        price_usd_per_mwh=price.ravel().tolist(), mode=mode, max_iter=max_iter,
                                        gap_tol=gap_tol)


def station_prices_from_proto(msg: tno_pb2.StationPricesRequest, n_stations: int, n_periods: int,
                              limit_usd_per_mwh: float) -> tuple[np.ndarray, str, int, float]:
    """(prices (S, P), mode, max_iter, gap_tol); InvalidArgument names the bad field."""
    if msg.n_stations != n_stations or msg.n_periods != n_periods:
        raise InvalidArgument(f"n_stations x n_periods = {msg.n_stations} x {msg.n_periods}; this operator has "
                              f"{n_stations} stations x {n_periods} periods")
    price = np.asarray(vector("price_usd_per_mwh", msg.price_usd_per_mwh, n_stations * n_periods,
                              limit=limit_usd_per_mwh), dtype=float).reshape(n_stations, n_periods)
    if msg.mode not in ("equilibrium", "shortest_path"):
        raise InvalidArgument(f"mode={msg.mode!r} is unknown (known: equilibrium, shortest_path)")
    if not 1 <= msg.max_iter <= 1000:
        raise InvalidArgument(f"max_iter={msg.max_iter} must be in 1..1000")
    gap_tol = scalar("gap_tol", msg.gap_tol, positive=True)
    return price, msg.mode, int(msg.max_iter), float(gap_tol)


def arrivals_to_proto(arr: Any, gap: float, gap_charging: float, iterations: int) -> tno_pb2.StationArrivals:
    return tno_pb2.StationArrivals(
        ev_id=list(arr.ev_id), ev_type=list(arr.ev_type), station=np.asarray(arr.station, dtype=int).tolist(),
        **{f: np.asarray(getattr(arr, f), dtype=float).tolist() for f in _ARRIVAL_FLOATS},
        need_cut_kwh=float(arr.need_cut_kwh), equilibrium_gap=float(gap), equilibrium_gap_charging=float(gap_charging),
        iterations=int(iterations))


def arrivals_from_proto(msg: tno_pb2.StationArrivals, cls: Callable[..., T]) -> tuple[T, float, float, int]:
    """(arrivals as ``cls`` (tno.operator.StationArrivals), gap, gap of the charging EVs, iterations)."""
    n = len(msg.ev_id)
    if any(len(getattr(msg, f)) != n for f in ("ev_type", "station", *_ARRIVAL_FLOATS)):
        raise InvalidArgument(f"StationArrivals: repeated fields differ in length (ev_id has {n})")
    arr = cls(ev_id=tuple(msg.ev_id), ev_type=tuple(msg.ev_type), station=np.asarray(list(msg.station), dtype=np.int64),
              **{f: _arr(getattr(msg, f)) for f in _ARRIVAL_FLOATS}, need_cut_kwh=float(msg.need_cut_kwh))
    return arr, float(msg.equilibrium_gap), float(msg.equilibrium_gap_charging), int(msg.iterations)


# --------------------------------------------------------------------------------------------------
# a DSO's dispatch alone (scheduled-charging scenarios)


@dataclass(frozen=True)
class ScenarioDispatchData:
    """What ``DsoService.Dispatch`` returns, as arrays (``report``: the DSO's report as ``report_cls``)."""

    scenario: str
    report: Any
    station_ids: tuple[str, ...]
    station_p_mw: np.ndarray  # (S, T) net EV active power per station, charging > 0 [MW]
    station_q_mvar: np.ndarray  # (S, T) EV chargers' Q, absorbing > 0 [MVAr] ((0, T) without)
    pv_q_mvar: np.ndarray  # (G, T) [MVAr]
    wind_q_mvar: np.ndarray  # (U, T) [MVAr]
    objective: float
    solve_s: float
    ev_ids: tuple[str, ...]
    ev_unmet_kwh: np.ndarray  # (n_evs,) [kWh]
    #: Redispatch only: the day-ahead objective, late EVs' shortfall [kWh], first re-dispatched period
    day_ahead_objective: float = 0.0
    late_shortfall_kwh: float = 0.0
    t_from: int = 0


def _rows(values: Sequence[float], t: int) -> np.ndarray:
    return _arr(values).reshape(-1, t) if len(values) else np.zeros((0, t))


def scenario_dispatch_to_proto(out: Any, station_ids: Sequence[str]) -> dso_pb2.DsoDispatchResponse:
    """``out``: a ``dso.scenarios.ScenarioDispatch``."""
    d, st = out.dispatch, out.settlement
    unmet = np.zeros(0) if st.ev_unmet_kwh is None else np.asarray(st.ev_unmet_kwh, dtype=float)
    return dso_pb2.DsoDispatchResponse(
        report=dso_report_to_proto(out.report), scenario=out.name, station_ids=list(station_ids),
        station_p_mw=np.asarray(d.ev_station_p_mw, dtype=float).ravel().tolist(),
        station_q_mvar=np.asarray(d.ev_station_q_mvar, dtype=float).ravel().tolist(),
        pv_q_mvar=np.asarray(d.pv_q_mvar, dtype=float).ravel().tolist(),
        wind_q_mvar=np.asarray(d.wind_q_mvar, dtype=float).ravel().tolist(),
        n_pv=int(np.asarray(d.pv_q_mvar).shape[0]), n_wind=int(np.asarray(d.wind_q_mvar).shape[0]),
        objective=float(out.objective), solve_s=float(out.solve_s), ev_ids=list(st.ev_ids),
        ev_unmet_kwh=unmet.tolist())


def scenario_dispatch_from_proto(msg: dso_pb2.DsoDispatchResponse, report_cls: Callable[..., T],
                                 feeder_id: str) -> ScenarioDispatchData:
    t = int(msg.report.n_periods)
    if len(msg.ev_ids) != len(msg.ev_unmet_kwh):
        raise InvalidArgument(f"ev_unmet_kwh: {len(msg.ev_unmet_kwh)} values for {len(msg.ev_ids)} ev_ids")
    return ScenarioDispatchData(
        scenario=msg.scenario, report=dso_report_from_proto(msg.report, report_cls, feeder_id),
        station_ids=tuple(msg.station_ids), station_p_mw=_rows(msg.station_p_mw, t),
        station_q_mvar=_rows(msg.station_q_mvar, t), pv_q_mvar=_rows(msg.pv_q_mvar, t),
        wind_q_mvar=_rows(msg.wind_q_mvar, t), objective=msg.objective, solve_s=msg.solve_s,
        ev_ids=tuple(msg.ev_ids), ev_unmet_kwh=_arr(msg.ev_unmet_kwh), day_ahead_objective=msg.day_ahead_objective,
        late_shortfall_kwh=msg.late_shortfall_kwh, t_from=int(msg.t_from))
