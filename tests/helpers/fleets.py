"""Independent per-EV checks of schedules (recomputed from each EV's own data, not from the envelopes)."""

from __future__ import annotations

import numpy as np

from aggregator.fleet import EV

T = 24
DT_H = 1.0


def plugged_mask(ev: EV) -> np.ndarray:
    """Independent check: period t is plugged iff [t, t+1) lies inside [arrival, departure) (cyclic)."""
    dep = ev.departure_h if ev.departure_h > ev.arrival_h else ev.departure_h + 24.0
    mask = np.zeros(T, dtype=bool)
    for t in range(48):
        if t >= ev.arrival_h - 1e-9 and t + 1 <= dep + 1e-9:
            mask[t % T] = True
    return mask


def check_per_ev(fleet: list[EV], p_ch_kw: np.ndarray, p_dis_kw: np.ndarray) -> None:
    """Every EV: powers within limits, zero outside the window, SOC within [soc_min, cap], need met."""
    for i, ev in enumerate(fleet):
        plugged = plugged_mask(ev)
        assert np.all(p_ch_kw[i, ~plugged] == 0.0) and np.all(p_dis_kw[i, ~plugged] == 0.0), ev.ev_id
        assert np.all(p_ch_kw[i] <= ev.p_charge_kw + 1e-6) and np.all(p_ch_kw[i] >= -1e-9), ev.ev_id
        assert np.all(p_dis_kw[i] <= ev.p_discharge_kw + 1e-6) and np.all(p_dis_kw[i] >= -1e-9), ev.ev_id
        first = int(np.ceil(ev.arrival_h - 1e-9)) % T
        order = [(first + k) % T for k in range(int(plugged.sum()))]
        gain = np.cumsum(ev.efficiency * p_ch_kw[i, order] - p_dis_kw[i, order] / ev.efficiency) * DT_H
        soc = ev.soc_arrival_kwh + gain
        assert np.all(soc >= ev.soc_min_kwh - 1e-6) and np.all(soc <= ev.capacity_kwh + 1e-6), ev.ev_id
        assert abs(gain[-1] - ev.energy_need_kwh) <= 1e-6, (ev.ev_id, gain[-1], ev.energy_need_kwh)
