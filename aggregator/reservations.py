"""Reservations: an EV owner books (arrival, departure, energy, station); accepted or refused with a reason.

A reservation is accepted only if the station can still serve every accepted EV plus the new one:
(1) the EV itself is valid (times, energy within efficiency x charger power x dwell, known station);
(2) the station's plug count is not exceeded in any period;
(3) an exact per-EV schedule exists for all EVs of that station with the station's net power within
    p_max_kw in every period (LP feasibility, exact per-EV envelopes).
Accepted reservations enter the fleet handed to the envelopes (:meth:`ReservationBook.flexibility`).
Thread-safe: one lock serialises decisions, so concurrent submits never over-book a station, and
:meth:`ReservationBook.close` freezes the fleet atomically (no reservation is accepted after the envelopes
were built from it). A resubmission of an accepted reservation with the same data is a replay (a client
retry): answered accepted again, booked once.

Durability: with a :class:`~aggregator.journal.ReservationJournal` every accepted reservation and the
closing of the book are on disk before the answer, and :meth:`ReservationBook.restore` rebuilds the book
after a restart (the journal was written by this same book, so its EVs are booked without re-checking).

Speed: each station keeps one feasible net-power profile of its accepted EVs. A new EV that fits in the
headroom left by that profile (charging as early as possible in its window) is accepted without an LP,
which proves feasibility by construction; only when it does not fit is the exact LP over all of the
station's EVs solved (and its solution becomes the new profile). The decision is the same as always
solving the LP; the LP runs only near a station's capacity.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from aggregator.fleet import EV, FleetError, Station, plug_in_window, validate_fleet
from aggregator.flex import FleetFlexibility, exact_flexibility, inner_flexibility, period_map_matrix
from aggregator.journal import ReservationJournal
from aggregator.schedule import build_price_response, solve_price_response
from core.errors import SolveError


@dataclass(frozen=True)
class Accepted:
    ev_id: str


@dataclass(frozen=True)
class Refused:
    ev_id: str
    reason: str
    #: "invalid" (bad EV data) | "duplicate_id" | "station_power" | "station_plugs" | "closed"
    code: str = "invalid"


@dataclass(frozen=True)
class Replayed:
    """The same reservation (same id and data) was already accepted: a retry, booked once."""

    ev_id: str


#: a profile within this of a station's limit counts as at the limit [kW] (solver tolerance)
_HEADROOM_TOL_KW = 1e-6


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
        #: per station, net power [kW] of one feasible schedule of its accepted EVs; None = not known yet
        self._profile_kw: dict[str, np.ndarray | None] = {s.station_id: None for s in stations}
        self._closed: tuple[EV, ...] | None = None
        self.n_preloaded = 0
        self.n_restored = 0
        self.lp_solves = 0
        self.journal: ReservationJournal | None = None

    def _window_mask(self, ev: EV) -> np.ndarray:
        start, dwell = plug_in_window(np.array([ev.arrival_h]), np.array([ev.departure_h]), self.dt_h,
                                      self.n_periods)
        mask = np.zeros(self.n_periods, dtype=bool)
        mask[(int(start[0]) + np.arange(int(dwell[0]))) % self.n_periods] = True
        return mask

    def _station_feasible(self, evs: list[EV], station: Station) -> bool:
        """Can ``station`` serve all ``evs`` at it (each at its own station; alternatives ignored)? Keeps the
        station's net-power profile [kW] of the solution when it can."""
        evs = [replace(e, alt_stations=()) if e.alt_stations else e for e in evs]
        flex = exact_flexibility(evs, [station], self.dt_h, self.n_periods)
        model = build_price_response(flex, self.dt_h, self.n_periods, {station.station_id: station.p_max_kw / 1e3})
        self.lp_solves += 1
        try:
            p_ch, p_dis, _ = solve_price_response(model, np.zeros(self.n_periods))
        except SolveError:
            return False
        self._profile_kw[station.station_id] = period_map_matrix(flex, self.n_periods) @ (p_ch - p_dis) * 1e3
        return True

    def _fits_headroom(self, ev: EV, station: Station, mask: np.ndarray) -> np.ndarray | None:
        """The EV charged as early as possible inside its window within the station's headroom [kW per
        period], or None when its need does not fit (then only the exact LP can decide)."""
        profile = self._profile_kw[station.station_id]
        if profile is None:
            return None
        start, _ = plug_in_window(np.array([ev.arrival_h]), np.array([ev.departure_h]), self.dt_h, self.n_periods)
        order = (int(start[0]) + np.arange(int(mask.sum()))) % self.n_periods
        headroom = np.clip(station.p_max_kw - profile[order] - _HEADROOM_TOL_KW, 0.0, ev.p_charge_kw)
        stored = np.cumsum(headroom * ev.efficiency * self.dt_h)
        if stored[-1] < ev.energy_need_kwh:
            return None
        k = int(np.searchsorted(stored, ev.energy_need_kwh))  # last period used
        charge = headroom.copy()
        charge[k + 1:] = 0.0
        before = stored[k - 1] if k else 0.0
        charge[k] = (ev.energy_need_kwh - before) / (ev.efficiency * self.dt_h)
        out = np.zeros(self.n_periods)
        out[order] = charge
        return out

    def submit(self, ev: EV) -> Accepted | Refused | Replayed:
        """Accept and schedule ``ev``, or refuse it with the reason (never raises for bad EV data)."""
        try:
            validate_fleet([ev], self.stations, self.dt_h, self.n_periods)
        except FleetError as exc:
            return Refused(ev.ev_id, str(exc), "invalid")
        with self._lock:
            if self._closed is not None:
                return Refused(ev.ev_id, "the day-ahead envelopes were already sent; reservations are closed",
                               "closed")
            if ev.ev_id in self._evs:
                if self._evs[ev.ev_id] == ev:
                    return Replayed(ev.ev_id)
                return Refused(ev.ev_id, f"EV '{ev.ev_id}': a reservation with this id is already accepted "
                                         "(with different data)", "duplicate_id")
            station = self._by_id[ev.station]
            mask = self._window_mask(ev)
            occ = self._occupancy[ev.station]
            cap = self._plugs.get(ev.station)
            if cap is not None and np.any(occ[mask] + 1 > cap):
                t = int(np.flatnonzero(mask & (occ + 1 > cap))[0])
                return Refused(ev.ev_id, f"station '{ev.station}' full: all {cap} plugs taken in period {t}",
                               "station_plugs")
            quick = self._fits_headroom(ev, station, mask)
            if quick is not None:
                self._profile_kw[ev.station] = self._profile_kw[ev.station] + quick
            else:
                same = [e for e in self._evs.values() if e.station == ev.station]
                if not self._station_feasible([*same, ev], station):
                    return Refused(ev.ev_id, f"station '{ev.station}' full: p_max_kw={station.p_max_kw:g} cannot "
                                             f"serve the accepted EVs plus this one in their windows", "station_power")
            if self.journal is not None:  # on disk before it is confirmed (a failure here refuses nothing silently)
                self.journal.append(ev)
            self._evs[ev.ev_id] = ev
            occ[mask] += 1
            return Accepted(ev.ev_id)

    def close(self) -> tuple[EV, ...]:
        """Stop taking reservations and return the fleet, atomically with respect to ``submit`` (idempotent)."""
        with self._lock:
            if self._closed is None:
                if self.journal is not None:
                    self.journal.close_book()
                self._closed = tuple(self._evs.values())
            return self._closed

    @property
    def closed(self) -> bool:
        return self._closed is not None

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
                self._profile_kw[ev.station] = None  # the preloaded EVs were not checked: the next one runs the LP
            self.n_preloaded += len(evs)

    def restore(self, journal: ReservationJournal) -> None:
        """Attach ``journal`` (call after ``preload``): book the reservations it holds, close the book if it was
        closed; every later acceptance and the closing are written to it."""
        evs = journal.accepted()
        if evs:
            self.preload(evs)
            self.n_preloaded -= len(evs)
            self.n_restored = len(evs)
        self.journal = journal
        if journal.closed:
            self.close()

    def fleet(self) -> tuple[EV, ...]:
        """Accepted EVs, in acceptance order."""
        with self._lock:
            return tuple(self._evs.values())

    def flexibility(self) -> FleetFlexibility:
        """Inner (proportional-sharing) envelopes of the accepted EVs."""
        return inner_flexibility(list(self.fleet()), list(self.stations), self.dt_h, self.n_periods)
