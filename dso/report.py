"""What a DSO publishes about its own dispatch at the end of a run (the run contract's feeder data).

Everything the orchestrator reports about a feeder comes from a ``FeederReport``: computed in-process
in the embedded default, sent as a ``DsoReport`` message by a DSO service. The DSO runs its own AC
power-flow check, since only it holds the feeder's impedances.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dso.acpf import ac_check
from dso.chance import check_dispatch
from dso.model import FeederDispatch, FeederInputs
from dso.network import FeederData


@dataclass(frozen=True)
class EvStations:
    """The EVs behind a feeder's dispatch, per station and period, as its aggregator allocated them."""

    station_id: tuple[str, ...]  # (S,)
    node: tuple[int, ...]  # (S,) feeder node (1-based)
    p_mw: np.ndarray  # (S, T) net EV power at the station, charging positive (from the per-EV schedules)
    n_evs: np.ndarray  # (S, T) EVs plugged in at the station
    rounding_mw: float  # max |station power after rounding the allocation to whole EVs - dispatched| [MW]


@dataclass(frozen=True)
class EvSettlement:
    """What a DSO's aggregator reports back about the dispatched envelopes."""

    unmet_mwh: float  # energy the EVs needed and did not get
    #: per-station detail; only an aggregator in the same process hands it over (services: None)
    stations: EvStations | None = None
    #: per EV of the aggregator's fleet: its id and the need its schedule leaves unmet [kWh] (None: not given)
    ev_ids: tuple[str, ...] = ()
    ev_unmet_kwh: np.ndarray | None = None


@dataclass(frozen=True)
class FeederReport:
    feeder_id: str
    p_import_mw: np.ndarray  # (T,)
    q_import_mvar: np.ndarray  # (T,)
    p_load_mw: np.ndarray  # (N,T)
    q_load_mvar: np.ndarray  # (N,T)
    p_gen_mw: np.ndarray  # (N,T) PV + wind + microturbines
    q_gen_mvar: np.ndarray  # (N,T)
    p_ev_mw: np.ndarray  # (N,T) net EV withdrawal
    v_pu: np.ndarray  # (N,T)
    loss_mw: np.ndarray  # (T,)
    pv_p_mw: np.ndarray  # (T,) PV used, feeder total
    pv_avail_mw: np.ndarray  # (T,) PV available, feeder total
    mt_p_mw: np.ndarray  # (T,) microturbines, feeder total
    cost_usd: dict[str, float]  # local cost terms (no purchase)
    soc_gap_mva2: float
    ev_unmet_mwh: float  # from the aggregator's disaggregation
    ac_max_voltage_error_pu: float
    ac_loss_error_rel: float
    ac_checked: bool
    ac_converged: bool
    ev_stations: EvStations | None = None
    wind_p_mw: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (T,) feeder wind used (empty: none)
    wind_avail_mw: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (T,) feeder wind available
    #: the elastic mismatch at the reported import: what the feeder could not take (0 at a consistent boundary)
    penalty_usd: float = 0.0
    mismatch_mw: float = 0.0
    #: (N,T) EV chargers' reactive power, a withdrawal (sign as loads) [MVAr]; empty: P-only chargers
    q_ev_mvar: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    #: the out-of-sample check of a chance-constrained dispatch (``dso.chance.check_dispatch``): joint and
    #: per-group reliability (Monte Carlo, held-out days), mean reserves [MW]; empty without a chance layer
    chance: dict[str, float] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return int(self.v_pu.shape[0])


def publish(data: FeederData, inputs: FeederInputs, dispatch: FeederDispatch, ev: EvSettlement,
            ac: bool = True, penalty_usd: float = 0.0, mismatch_mw: float = 0.0) -> FeederReport:
    """The DSO's report of ``dispatch`` with its aggregator's EV outcome ``ev``; ``ac`` runs the pandapower
    AC check at the dispatched injections."""
    if ac:
        chk = ac_check(data, inputs, dispatch)
        v_err, loss_err, converged = float(chk.max_voltage_error_pu), float(chk.loss_error_rel), bool(chk.converged)
    else:
        v_err, loss_err, converged = 0.0, 0.0, True
    return FeederReport(
        feeder_id=data.name, p_import_mw=dispatch.p_import_mw, q_import_mvar=dispatch.q_import_mvar,
        p_load_mw=inputs.p_load_mw, q_load_mvar=inputs.q_load_mvar, p_gen_mw=dispatch.p_gen_mw,
        q_gen_mvar=dispatch.q_gen_mvar, p_ev_mw=dispatch.ev_p_mw, v_pu=dispatch.v_pu, loss_mw=dispatch.loss_mw,
        pv_p_mw=dispatch.pv_p_mw.sum(axis=0), pv_avail_mw=inputs.pv_avail_mw.sum(axis=0),
        mt_p_mw=dispatch.mt_p_mw.sum(axis=0), cost_usd=dict(dispatch.cost_usd),
        soc_gap_mva2=float(dispatch.soc_gap_mva2), ev_unmet_mwh=float(ev.unmet_mwh),
        ac_max_voltage_error_pu=v_err, ac_loss_error_rel=loss_err, ac_checked=ac, ac_converged=converged,
        ev_stations=ev.stations,
        wind_p_mw=dispatch.wind_p_mw.sum(axis=0) if dispatch.wind_p_mw.size else np.zeros(0),
        wind_avail_mw=inputs.wind_avail_mw.sum(axis=0) if inputs.wind_avail_mw.size else np.zeros(0),
        penalty_usd=float(penalty_usd), mismatch_mw=float(mismatch_mw),
        q_ev_mvar=dispatch.ev_q_mvar if dispatch.ev_q_mvar.size else np.zeros_like(dispatch.v_pu),
        chance=check_dispatch(data, inputs, dispatch),
    )
