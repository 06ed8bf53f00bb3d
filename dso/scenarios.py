"""A DSO dispatching its feeder alone, in one of the scheduled-charging scenarios (the second paper: Cao
Hangtao et al., Zhejiang Electric Power 2024, DOI 10.19585/j.zjdl.202405005).

The same function serves the embedded study (``orchestrator.studies.scheduled_charging``) and a DSO service
(``DsoService.Dispatch``), so both give the same numbers. No TSO: the substation voltage is fixed at the
feeder's ``v_sub_pu`` and the import is free (price 0), so the DSO minimises its case objective.

- ``base``: base load only (no EV, no wind, no PV); nothing is controllable, the dispatch is the power flow of
  the base load (voltage limits it cannot meet are lifted to ``BASE_V_LIMITS_PU``);
- ``ev_p``: EVs, wind and PV; only the EVs' active power is scheduled, every DER at unity power factor;
- ``ev_pq``: the full model (EV chargers as four-quadrant converters, PV and wind inverters with Q inside S).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from dso.model import EvFlexibility, FeederDispatch, FeederInputs
from dso.network import FeederData
from dso.problem import DsoProblem
from dso.report import EvSettlement, FeederReport, publish

SCENARIOS = ("base", "ev_p", "ev_pq")
#: the base scenario is a power flow: voltage limits it cannot meet are lifted to these [p.u.]
BASE_V_LIMITS_PU = (0.5, 1.5)


class ScenarioError(ValueError):
    """An unknown scenario name; the message lists the known ones."""


def scenario_inputs(inputs: FeederInputs, name: str) -> FeederInputs:
    """The feeder's inputs for scenario ``name`` from the full model's inputs (``ev_pq``)."""
    if name == "ev_pq":
        return inputs
    if name == "ev_p":
        return replace(inputs, der_q=False, ev_q_mode="none")
    if name == "base":
        t = inputs.n_periods
        z_i, z_f = np.zeros(0, dtype=np.int64), np.zeros(0)
        return replace(inputs, ev=EvFlexibility.empty(), ev_fixed_mw=np.zeros_like(inputs.p_load_mw),
                       pv_node_idx=z_i, pv_avail_mw=np.zeros((0, t)), pv_s_mva=z_f, wind_node_idx=z_i,
                       wind_avail_mw=np.zeros((0, t)), wind_s_mva=z_f, ev_q_mode="none", station_node_idx=z_i,
                       station_s_mva=z_f, der_q=False, v_min_pu=BASE_V_LIMITS_PU[0], v_max_pu=BASE_V_LIMITS_PU[1])
    raise ScenarioError(f"scenario {name!r} is unknown (known: {', '.join(SCENARIOS)})")


@dataclass(frozen=True)
class ScenarioDispatch:
    name: str
    inputs: FeederInputs
    dispatch: FeederDispatch
    report: FeederReport
    settlement: EvSettlement  # the aggregator's per-EV outcome of the dispatch
    objective: float  # the case objective at the optimum (weighted loss / deviation / cost)
    solve_s: float


def dispatch_alone(data: FeederData, inputs: FeederInputs, name: str,
                   settle: Callable[[FeederDispatch], EvSettlement], *, ac: bool = True,
                   solver: str = "CLARABEL") -> ScenarioDispatch:
    """Dispatch the feeder alone in scenario ``name`` (``inputs``: the full model's), settle the EVs with
    ``settle`` (its aggregator) and publish the report (with its own AC check when ``ac``)."""
    own = scenario_inputs(inputs, name)
    sol = DsoProblem(data, own, mode="price", solver=solver).solve(price_usd_per_mwh=np.zeros(own.n_periods))
    d = sol.dispatch
    settlement = settle(d) if own.ev.n_window else EvSettlement(unmet_mwh=0.0, ev_unmet_kwh=np.zeros(0))
    report = publish(data, own, d, settlement, ac=ac)
    return ScenarioDispatch(name, own, d, report, settlement, sol.objective_usd, sol.solve_s)
