"""The TSO's own inputs from a case: its network and costs and the day's series (what its process holds)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.case import CaseError, CaseSpec
from core.profiles import profile
from tso.model import TsoInputs
from tso.network import TransmissionData, TransmissionDataError, ieee30, ieee118

NETWORKS = {"case30": ieee30, "case118": ieee118}


def from_case(spec: CaseSpec) -> tuple[TransmissionData, TsoInputs]:
    """The transmission network (scaled costs, ramp limits) and the day's load, wind and demand response;
    data errors become ``CaseError`` naming the case."""
    try:
        return _transmission(spec)
    except TransmissionDataError as exc:
        raise CaseError(f"case '{spec.name}': {exc}") from exc


def _transmission(spec: CaseSpec) -> tuple[TransmissionData, TsoInputs]:
    t = spec.transmission
    data = NETWORKS[t.network](name=t.network, cost_scale=t.cost_scale)
    if t.ramp_frac_per_h != 1.0:
        data = replace(data, gen_ramp_mw_per_h=t.ramp_frac_per_h * data.gen_p_max_mw)
    labels = [int(b) for b in data.bus_labels]
    shape = profile(t.load_profile, spec.dt_h)
    load = t.load_scale * data.load_p_mw[:, None] * shape[None, :]
    wind_idx = np.array([labels.index(w.bus) for w in t.wind], dtype=int)
    wind_avail = np.array([w.capacity_mw * profile(w.profile, spec.dt_h) for w in t.wind]).reshape(
        len(t.wind), spec.periods)
    inputs = TsoInputs(
        dt_h=spec.dt_h,
        load_p_mw=load,
        wind_bus_idx=wind_idx,
        wind_avail_mw=wind_avail,
        wind_curtail_usd_per_mwh=t.wind_curtail_usd_per_mwh,
        dr_max_mw=t.dr_max_share * load,
        dr_cost_usd_per_mwh=t.dr_cost_usd_per_mwh,
        dso_bus_idx=np.array([labels.index(f.bus) for f in spec.feeders], dtype=int),
    )
    return data, inputs
