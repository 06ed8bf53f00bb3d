"""Reservations: an EV owner books (arrival, departure, energy, station); accepted or refused with a reason.

A reservation is accepted only if the station can still serve every accepted EV plus the new one:
(1) the EV itself is valid (times, energy within efficiency x charger power x dwell, known station);
(2) the station's plug count is not exceeded in any period;
(3) an exact per-EV schedule exists for all EVs of that station with the station's net power within
    p_max_kw in every period (LP feasibility, exact per-EV envelopes).
Accepted reservations enter the fleet handed to the envelopes (:meth:`ReservationBook.flexibility`).
Thread-safe: one lock serialises decisions, so concurrent submits never over-book a station.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from aggregator.fleet import EV, FleetError, Station, plug_in_window, validate_fleet
from aggregator.flex import FleetFlexibility, exact_flexibility, inner_flexibility
from aggregator.schedule import SolveError, build_price_response, solve_price_response


@dataclass(frozen=True)
class Accepted:
    ev_id: str


@dataclass(frozen=True)
class Refused:
    ev_id: str
    reason: str


class ReservationBook:
    """Reservations for ``stations``; ``plugs`` maps station id -> number of plugs (default unlimited)."""

    def __init__(
        self,
        stations: Sequence[Station],
        dt_h: float = 1.0,
        n_periods: int = 24,
        plugs: Mapping[str, int] | None = None,
    ) -> None:
        validate_fleet([], stations, dt_h, n_periods)
        self.stations = tuple(stations)
        self.dt_h, self.n_periods = dt_h, n_periods
        self._by_id = {s.station_id: s for s in stations}
        self._plugs = dict(plugs or {})
        unknown = sorted(set(self._plugs) - set(self._by_id))
        if unknown:
            raise FleetError(f"plugs: unknown station(s) {unknown}")
        for sid, n in self._plugs.items():
            if n < 1:
                raise FleetError(f"station '{sid}': plugs={n!r} must be >= 1")
        self._lock = threading.Lock()
        self._evs: dict[str, EV] = {}
        self._occupancy = {s.station_id: np.zeros(n_periods, dtype=np.int64) for s in stations}

    def _window_mask(self, ev: EV) -> np.ndarray:
        start, dwell = plug_in_window(np.array([ev.arrival_h]), np.array([ev.departure_h]), self.dt_h,
                                      self.n_periods)
        mask = np.zeros(self.n_periods, dtype=bool)
        mask[(int(start[0]) + np.arange(int(dwell[0]))) % self.n_periods] = True
        return mask

    def _station_feasible(self, evs: list[EV], station: Station) -> bool:
        """Can ``station`` serve all ``evs`` at it (each at its own station; alternatives ignored)?"""
        evs = [replace(e, alt_stations=()) if e.alt_stations else e for e in evs]
        flex = exact_flexibility(evs, [station], self.dt_h, self.n_periods)
        model = build_price_response(flex, self.dt_h, self.n_periods, {station.station_id: station.p_max_kw / 1e3})
        try:
            solve_price_response(model, np.zeros(self.n_periods))
        except SolveError:
            return False
        return True

    def submit(self, ev: EV) -> Accepted | Refused:
        """Accept and schedule ``ev``, or refuse it with the reason (never raises for bad EV data)."""
        try:
            validate_fleet([ev], self.stations, self.dt_h, self.n_periods)
        except FleetError as exc:
            return Refused(ev.ev_id, str(exc))
        with self._lock:
            if ev.ev_id in self._evs:
                return Refused(ev.ev_id, f"EV '{ev.ev_id}': a reservation with this id is already accepted")
            station = self._by_id[ev.station]
            mask = self._window_mask(ev)
            occ = self._occupancy[ev.station]
            cap = self._plugs.get(ev.station)
            if cap is not None and np.any(occ[mask] + 1 > cap):
                t = int(np.flatnonzero(mask & (occ + 1 > cap))[0])
                return Refused(ev.ev_id, f"station '{ev.station}' full: all {cap} plugs taken in period {t}")
            same = [e for e in self._evs.values() if e.station == ev.station]
            if not self._station_feasible([*same, ev], station):
                return Refused(ev.ev_id, f"station '{ev.station}' full: p_max_kw={station.p_max_kw:g} cannot serve"
                                         f" the accepted EVs plus this one in their windows")
            self._evs[ev.ev_id] = ev
            occ[mask] += 1
            return Accepted(ev.ev_id)

    def preload(self, evs: Sequence[EV]) -> None:
        """Book a fleet validated elsewhere (a case's EVs) without the per-EV station check, so that later
        reservations are checked against it; refuses duplicates and bad EV data like ``submit``."""
        validate_fleet(list(evs), self.stations, self.dt_h, self.n_periods)
        with self._lock:
            for ev in evs:
                if ev.ev_id in self._evs:
                    raise FleetError(f"EV '{ev.ev_id}': a reservation with this id is already accepted")
                self._evs[ev.ev_id] = ev
                self._occupancy[ev.station][self._window_mask(ev)] += 1

    def fleet(self) -> tuple[EV, ...]:
        """Accepted EVs, in acceptance order."""
        with self._lock:
            return tuple(self._evs.values())

    def flexibility(self) -> FleetFlexibility:
        """Inner (proportional-sharing) envelopes of the accepted EVs."""
        return inner_flexibility(list(self.fleet()), list(self.stations), self.dt_h, self.n_periods)
