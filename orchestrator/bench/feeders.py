"""``gridcoord bench --feeder NAME|FILE``: a feeder's DistFlow model against a pandapower AC power flow at its
base loads, and for ``ieee123`` also against the OpenDSS solution of the source (``dso.validation``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any


def bench_feeder(feeder: str, out: str | None = None) -> str:
    """The validation figures as text; with ``out`` also ``out/feeder_validation.json``."""
    from core.feeders import IEEE123_V_SUB_PU
    from dso.network import feeder_from_file, ieee33bw, ieee123
    from dso.validation import distflow_vs_ac, ieee123_vs_opendss

    if feeder == "ieee123":
        data, v_sub = ieee123(), IEEE123_V_SUB_PU
    elif feeder == "case33bw":
        data, v_sub = ieee33bw(), 1.0
    else:
        data, v_sub = feeder_from_file(feeder), 1.0
    ac = distflow_vs_ac(data, v_sub)
    result: dict[str, Any] = {"feeder": feeder, "n_nodes": data.n_nodes, "v_sub_pu": v_sub,
                              "distflow_vs_ac": dataclasses.asdict(ac)}
    lines = [
        f"feeder {feeder}: {data.n_nodes} nodes, {data.p_load_mw.sum():.3f} MW base load, V_sub {v_sub:g} p.u.",
        f"  DistFlow vs pandapower AC: max |dV| {ac.max_voltage_error_pu:.2e} p.u., losses {ac.loss_model_kw:.2f} "
        f"vs {ac.loss_ac_kw:.2f} kW (error {100 * ac.loss_error_rel:.2e} %), V_min {ac.v_min_pu:.4f} p.u. at node "
        f"{ac.v_min_node}, SOC gap {ac.soc_gap_mva2:.1e} MVA^2, converged {ac.converged}",
    ]
    for solved, key, what in ((True, "distflow_vs_opendss", "at the loads OpenDSS solved"),
                              (False, "distflow_vs_opendss_nominal_loads", "at the nominal loads")):
        if feeder != "ieee123":
            break
        dss = ieee123_vs_opendss(solved_loads=solved)
        result[key] = dataclasses.asdict(dss)
        lines.append(
            f"  DistFlow vs OpenDSS ({what}): losses {dss.loss_model_kw:.2f} vs "
            f"{dss.loss_opendss_kw:.2f} kW ({100 * dss.loss_error_rel:+.2f} %), max |V - mean phase V| "
            f"{dss.max_voltage_error_pu:.4f} p.u. (node {dss.max_voltage_error_node}; mean "
            f"{dss.mean_voltage_error_pu:.4f}), max |V - phase V| {dss.max_phase_voltage_error_pu:.4f} p.u., "
            f"V_min {dss.v_min_model_pu:.4f} vs {dss.v_min_opendss_pu:.4f} p.u. (lowest phase)")
    if out:
        path = Path(out) / "feeder_validation.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        lines.append(f"wrote {path}")
    return "\n".join(lines)
