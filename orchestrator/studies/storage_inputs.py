"""The storage plan's inputs from its case: EV stations from the aggregator, scenario subproblems.

Composition only (the orchestrator may import every operator): the aggregator builds each station's fleet
and its flexibility (controllable EVs: the inner proportional-sharing envelopes; the others charge on
arrival), the DSO's planning model reads them as ``dso.model.EvFlexibility`` plus fixed load.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from aggregator.fleet import EV, Station, synthetic_fleet
from aggregator.flex import inner_flexibility, uncontrolled_profile
from dso.inputs import flexibility_from_envelope
from dso.model import EvFlexibility
from dso.planning.case import StoragePlanCase
from dso.planning.storage import DT_H, EvStations, T


def station_fleets(case: StoragePlanCase) -> list[tuple[Station, list[EV]]]:
    """Each station with its EVs (home-charging sessions, no V2G, deterministic per case seed)."""
    out = []
    for k, s in enumerate(case.stations):
        st = Station(s.station_id, s.node, s.p_max_kw)
        evs = synthetic_fleet(s.n_evs, [st], seed=case.ev_seed + 1000 * k, v2g_share=0.0, dt_h=DT_H, n_periods=T)
        out.append((st, [replace(ev, ev_id=f"{s.station_id}/{ev.ev_id}") for ev in evs]))
    return out


def ev_stations(case: StoragePlanCase, share: float | None = None) -> EvStations:
    """EV stations of the case with ``share`` (default the case's) of each station's EVs controllable."""
    share = case.controllable_share if share is None else share
    n = case.feeder.n_nodes
    fixed = np.zeros((n, T))
    ctrl_evs: list[EV] = []
    stations: list[Station] = []
    for st, evs in station_fleets(case):
        stations.append(st)
        k = int(round(share * len(evs)))
        ctrl_evs += evs[:k]
        if evs[k:]:
            fixed[st.node - 1] += uncontrolled_profile(evs[k:], [st], DT_H, T)[0]
    if ctrl_evs:
        flex = flexibility_from_envelope(inner_flexibility(ctrl_evs, stations, DT_H, T))
    else:
        flex = EvFlexibility.empty()
    return EvStations(flex=flex, fixed_mw=fixed)
