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
retry): answered accepted again, booked once. Each booking has a token (given on acceptance and on its replay,
kept through amendments); a cancellation that names it cancels that booking only, so a retried cancellation
can never cancel a later booking of the same id.

Durability: with a :class:`~aggregator.journal.ReservationJournal` every accepted reservation and the
closing of the book are on disk before the answer, and :meth:`ReservationBook.restore` rebuilds the book
after a restart (the journal was written by this same book, so its EVs are booked without re-checking).

Speed (``_admit``): each station keeps one feasible net-power profile of its accepted EVs. A new EV that fits
in the headroom left by that profile (charging as early as possible in its window) is accepted at once, which
proves feasibility by construction; otherwise a maximum flow over the station's EVs (charging only,
``aggregator.admission``) decides, exactly when no EV there can discharge; only when the flow falls short and
discharging EVs are present does the exact LP over the station's EVs decide. The decision is the same as
always solving the LP (up to 1 Wh of rounding, on the safe side). Decisions for different stations run
concurrently (one lock per station); the book's own lock only guards ids, closing and the commit. With a
deadline, a request that cannot be decided and booked in time is refused ``busy`` with nothing booked.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from aggregator.admission import StationRows, charging_schedule_kw, cut_candidates, window_cut_violated
from aggregator.fleet import EV, FleetError, Station, ev_is_valid, validate_fleet, window_of
from aggregator.flex import FleetFlexibility, exact_flexibility, inner_flexibility, period_map_matrix
from aggregator.journal import ReservationJournal
from aggregator.schedule import build_price_response, solve_price_response
from core.errors import SolveError


@dataclass(frozen=True)
class Accepted:
    ev_id: str
    #: the booking's token (submit, amend; "" for a cancellation's answer): names this booking in ``cancel``;
    #: not part of equality (answers compare by kind and id)
    booking: str = field(default="", compare=False)


@dataclass(frozen=True)
class Refused:
    ev_id: str
    reason: str
    #: "invalid" (bad EV data) | "duplicate_id" | "station_power" | "station_plugs" | "closed" | "unknown_id" |
    #: "busy" (shed: no decision before the request's deadline, nothing booked; retry) | "stale_booking" (cancel:
    #: the named booking is not the id's current one and was never cancelled)
    code: str = "invalid"


@dataclass(frozen=True)
class Replayed:
    """The same reservation (same id and data) was already accepted, or the same booking already cancelled:
    a retry, applied once."""

    ev_id: str
    booking: str = field(default="", compare=False)


#: a profile within this of a station's limit counts as at the limit [kW] (solver tolerance)
_HEADROOM_TOL_KW = 1e-6
#: a decision is booked only if at least this much of the request's deadline is left [s]
_COMMIT_MARGIN_S = 0.050


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
        self.flow_solves = 0
        self.cut_refusals = 0
        self.greedy_accepts = 0
        self.shed = 0
        self.journal: ReservationJournal | None = None
        #: decisions for different stations run concurrently; one station's decisions are serialised
        self._station_lock = {s.station_id: threading.Lock() for s in stations}
        #: per station, what the flow test needs of each booked EV (see ``_row``)
        self._station_rows = {s.station_id: StationRows(n_periods, dt_h) for s in stations}
        self._amending: set[str] = set()  # ids between the two halves of an amendment
        #: ids cancelled and not booked again since: a repeated cancellation is a replay (a client retry)
        self._cancelled: set[str] = set()
        #: ev id -> token of its current booking (absent: preloaded); token -> ev id of every cancelled booking
        self._booking: dict[str, str] = {}
        self._cancelled_bookings: dict[str, str] = {}
        #: ev id -> the identity (client certificate) that booked it; absent: preloaded or booked in plaintext,
        #: which anyone allowed to amend or cancel may change
        self._owner: dict[str, str] = {}

    def _window_mask(self, ev: EV) -> np.ndarray:
        start, dwell = window_of(ev.arrival_h, ev.departure_h, self.dt_h, self.n_periods)
        mask = np.zeros(self.n_periods, dtype=bool)
        mask[(start + np.arange(dwell)) % self.n_periods] = True
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
        """The EV charged inside its window within the station's headroom [kW per period], levelling what
        headroom is left (water filling: it draws most where the station has most room), or None when its need
        does not fit in that headroom (then only the flow or the exact LP can decide)."""
        profile = self._profile_kw[station.station_id]
        if profile is None:
            return None
        headroom = np.maximum(station.p_max_kw - profile[mask] - _HEADROOM_TOL_KW, 0.0)
        charge = _level_fill(headroom, ev.p_charge_kw, ev.energy_need_kwh / (ev.efficiency * self.dt_h))
        if charge is None:
            return None
        out = np.zeros(self.n_periods)
        out[mask] = charge
        return out

    def owner(self, ev_id: str) -> str | None:
        """The identity that booked ``ev_id`` (None: preloaded, booked in plaintext, or not booked)."""
        with self._lock:
            return self._owner.get(ev_id)

    def _not_owner(self, ev_id: str, caller: str | None) -> Refused | None:
        """A refusal when ``ev_id`` is owned by another identity than ``caller`` (call with the book's lock)."""
        owner = self._owner.get(ev_id)
        if owner is None or owner == caller:
            return None
        who = "a caller without a certificate" if caller is None else f"identity {caller!r}"
        return Refused(ev_id, f"EV '{ev_id}': booked by identity {owner!r}; {who} may not change it", "not_owner")

    def submit(self, ev: EV, deadline: float | None = None, owner: str | None = None) -> Accepted | Refused | Replayed:
        """Accept and schedule ``ev``, or refuse it with the reason (never raises for bad EV data).

        ``deadline`` (``time.monotonic()`` seconds): when the decision cannot be made and booked before it, the
        answer is ``Refused(code="busy")`` and nothing is booked (the caller may retry), instead of a booking
        confirmed to nobody."""
        if not ev_is_valid(ev, self._by_id, self.dt_h, self.n_periods):
            try:
                validate_fleet([ev], self.stations, self.dt_h, self.n_periods)
            except FleetError as exc:
                return Refused(ev.ev_id, str(exc), "invalid")
        st_lock = self._station_lock[ev.station]
        wait = -1.0 if deadline is None else deadline - time.monotonic() - _COMMIT_MARGIN_S
        if wait != -1.0 and (wait <= 0 or not st_lock.acquire(timeout=wait)):
            self.shed += 1
            return Refused(ev.ev_id, f"station '{ev.station}' busy: no decision possible before the request's "
                                     "deadline; nothing was booked, retry later", "busy")
        if wait == -1.0:
            st_lock.acquire()
        try:
            with self._lock:
                early = self._known(ev)
            if early is not None:
                return early
            station = self._by_id[ev.station]
            mask = self._window_mask(ev)
            occ = self._occupancy[ev.station]
            cap = self._plugs.get(ev.station)
            if cap is not None and np.any(occ[mask] + 1 > cap):
                t = int(np.flatnonzero(mask & (occ + 1 > cap))[0])
                return Refused(ev.ev_id, f"station '{ev.station}' full: all {cap} plugs taken in period {t}",
                               "station_plugs")
            profile = self._admit(ev, station, mask)
            if profile is None:
                return Refused(ev.ev_id, f"station '{ev.station}' full: p_max_kw={station.p_max_kw:g} cannot "
                                         f"serve the accepted EVs plus this one in their windows", "station_power")
            if deadline is not None and time.monotonic() > deadline - _COMMIT_MARGIN_S / 2:
                self.shed += 1
                return Refused(ev.ev_id, f"station '{ev.station}' busy: the decision came too close to the "
                                         "request's deadline; nothing was booked, retry later", "busy")
            with self._lock:
                again = self._known(ev)
                if again is not None:  # the same id was booked meanwhile at another station, or the book closed
                    return again
                token = uuid.uuid4().hex
                if self.journal is not None:  # on disk before it is confirmed (a failure here refuses nothing silently)
                    self.journal.append(ev, owner, token)
                self._evs[ev.ev_id] = ev
                self._booking[ev.ev_id] = token
                self._cancelled.discard(ev.ev_id)
                if owner is not None:
                    self._owner[ev.ev_id] = owner
            occ[mask] += 1
            self._profile_kw[ev.station] = profile
            self._station_rows[ev.station].append(mask, *self._row(ev))
            return Accepted(ev.ev_id, token)
        finally:
            st_lock.release()

    def _known(self, ev: EV) -> Refused | Replayed | None:
        """The answer when the book is closed or ``ev.ev_id`` is already booked (None otherwise); call with
        the book's lock held. A retry of a booked reservation is a replay also after the book closed: its
        first answer may have been lost, and "closed" would tell its owner it is not booked."""
        if ev.ev_id in self._evs and ev.ev_id not in self._amending and self._evs[ev.ev_id] == ev:
            return Replayed(ev.ev_id, self._booking.get(ev.ev_id, ""))
        if self._closed is not None:
            return Refused(ev.ev_id, "the day-ahead envelopes were already sent; reservations are closed", "closed")
        if ev.ev_id in self._amending:
            return Refused(ev.ev_id, f"EV '{ev.ev_id}': its reservation is being amended; retry", "busy")
        if ev.ev_id in self._evs:
            return Refused(ev.ev_id, f"EV '{ev.ev_id}': a reservation with this id is already accepted "
                                     "(with different data)", "duplicate_id")
        return None

    @staticmethod
    def _row(ev: EV) -> tuple[float, float, float]:
        """What the admission tests need of an EV besides its window: grid-side need [kWh], charger and
        discharger powers [kW]."""
        return ev.energy_need_kwh / ev.efficiency, ev.p_charge_kw, ev.p_discharge_kw

    def _admit(self, ev: EV, station: Station, mask: np.ndarray) -> np.ndarray | None:
        """The station's net-power profile [kW] with ``ev`` added, or None when the station cannot serve it.

        Same decision as the exact LP, in three steps: (1) the EV fits in the headroom of the current profile
        (proof by construction); (2) a charging-only schedule of all the station's EVs exists (max flow: a
        proof, and exact when no EV there can discharge); (3) only otherwise, with discharging EVs present, the
        exact LP."""
        quick = self._fits_headroom(ev, station, mask)
        if quick is not None:
            self.greedy_accepts += 1
            profile = self._profile_kw[ev.station]
            assert profile is not None
            return profile + quick
        rows = self._station_rows[ev.station]
        if rows.remembered_cut_violated(mask, *self._row(ev), station.p_max_kw):
            self.cut_refusals += 1
            return None  # a remembered cut proves it (O(T) each: their draws are kept up to date)
        masks, needs, caps, dis = rows.with_one(mask, *self._row(ev))
        charging_only = not (rows.any_discharge or ev.p_discharge_kw > 0)
        lend = None if charging_only else dis
        if any(window_cut_violated(masks, needs, caps, s, station.p_max_kw, self.dt_h, lend)
               for s in cut_candidates(mask, self._profile_kw[ev.station], station.p_max_kw)):
            self.cut_refusals += 1
            return None  # a cut proves it: the EVs need more inside these periods than the station can give
        self.flow_solves += 1
        violated: list[np.ndarray] = []
        sched = charging_schedule_kw(masks, needs, caps, station.p_max_kw, self.dt_h, cut_out=violated)
        for c in violated:  # remember the violated cut for later requests
            rows.remember_cut(c)
        if sched is not None:
            return sched
        if charging_only:
            return None  # charging only is the whole model here: the flow's answer is exact
        before = self._profile_kw[ev.station]
        ok = self._station_feasible([*self._evs_at(ev.station), ev], station)
        found, self._profile_kw[ev.station] = self._profile_kw[ev.station], before  # booked only on commit
        return found if ok else None

    def _evs_at(self, station_id: str) -> list[EV]:
        with self._lock:
            return [e for e in self._evs.values() if e.station == station_id]

    def cancel(self, ev_id: str, caller: str | None = None,
               booking: str | None = None) -> Accepted | Refused | Replayed:
        """Withdraw a booked reservation before the book closes (``Accepted`` = cancelled).

        With ``booking`` (the token its acceptance gave) only that booking is cancelled: cancelling it again is a
        replay even after the id was booked anew (the new booking stays), and a token that is neither the id's
        current booking nor a cancelled one is refused ``stale_booking``. Without it, cancelling an id that was
        cancelled and not booked again since is a replay (a retry whose first answer was lost). Replays hold also
        after the book closed and after a restart (the journal keeps cancelled ids and tokens)."""
        with self._lock:
            if booking and self._cancelled_bookings.get(booking) == ev_id:
                return Replayed(ev_id, booking)
            ev = self._evs.get(ev_id)
            if ev is None and not booking and ev_id in self._cancelled:
                return Replayed(ev_id)
        if ev is None:
            named = f" (booking {booking!r})" if booking else ""
            return Refused(ev_id, f"EV '{ev_id}': no such reservation{named}", "unknown_id")
        with self._station_lock[ev.station], self._lock:
            denied = self._not_owner(ev_id, caller)
            if denied is not None:
                return denied
            if self._closed is not None:
                return Refused(ev_id, "the day-ahead envelopes were already sent; reservations are closed", "closed")
            if self._evs.get(ev_id) != ev:
                return Refused(ev_id, f"EV '{ev_id}': the reservation changed meanwhile; retry", "busy")
            token = self._booking.get(ev_id)
            if booking and booking != token:
                return Refused(ev_id, f"EV '{ev_id}': booking {booking!r} is not its current booking and was never "
                                      "cancelled; nothing was cancelled", "stale_booking")
            if self.journal is not None:
                self.journal.remove(ev_id, booking=token)
            del self._evs[ev_id]
            self._owner.pop(ev_id, None)
            self._cancelled.add(ev_id)
            if token is not None:
                del self._booking[ev_id]
                self._cancelled_bookings[token] = ev_id
            self._forget(ev)
        return Accepted(ev_id)

    def amend(self, ev: EV, caller: str | None = None) -> Accepted | Refused | Replayed:
        """Replace the booked reservation ``ev.ev_id`` by ``ev`` before the book closes. Admitted like a new
        one against the station's other EVs; refused -> the old reservation stays booked, unchanged. When the
        book already holds exactly ``ev`` (a retry of an applied amendment) the answer is a replay, also after
        the book closed: nothing is re-admitted."""
        if not ev_is_valid(ev, self._by_id, self.dt_h, self.n_periods):
            try:
                validate_fleet([ev], self.stations, self.dt_h, self.n_periods)
            except FleetError as exc:
                return Refused(ev.ev_id, str(exc), "invalid")
        with self._lock:
            old = self._evs.get(ev.ev_id)
            denied = self._not_owner(ev.ev_id, caller) if old is not None else None
        if denied is not None:
            return denied
        if old == ev:
            with self._lock:
                return Replayed(ev.ev_id, self._booking.get(ev.ev_id, ""))
        if old is None:
            return Refused(ev.ev_id, f"EV '{ev.ev_id}': no such reservation to amend", "unknown_id")
        locks = [self._station_lock[s] for s in sorted({old.station, ev.station})]  # one order: no deadlock
        for lk in locks:
            lk.acquire()
        try:
            with self._lock:
                if self._closed is not None:
                    return Refused(ev.ev_id, "the day-ahead envelopes were already sent; reservations are closed",
                                   "closed")
                if self._evs.get(ev.ev_id) != old:
                    return Refused(ev.ev_id, f"EV '{ev.ev_id}': the reservation changed meanwhile; retry", "busy")
                del self._evs[ev.ev_id]
                self._amending.add(ev.ev_id)
                self._forget(old)
            station = self._by_id[ev.station]
            mask = self._window_mask(ev)
            cap = self._plugs.get(ev.station)
            occ = self._occupancy[ev.station]
            fits = cap is None or not np.any(occ[mask] + 1 > cap)
            profile = self._admit(ev, station, mask) if fits else None
            keep, why = (ev, "") if profile is not None else (old, "plugs" if not fits else "power")
            with self._lock:
                if self.journal is not None and keep is ev:
                    self.journal.remove(old.ev_id, ev, self._owner.get(ev.ev_id), self._booking.get(ev.ev_id))
                self._evs[keep.ev_id] = keep
                self._amending.discard(keep.ev_id)
                kmask = self._window_mask(keep)
                self._occupancy[keep.station][kmask] += 1
                self._station_rows[keep.station].append(kmask, *self._row(keep))
                self._profile_kw[keep.station] = profile if keep is ev else None
            if keep is old:
                return Refused(ev.ev_id, f"station '{ev.station}' full ({why}): the amended reservation does not "
                                     "fit; the old one stays booked", "station_plugs" if not fits else "station_power")
            with self._lock:
                return Accepted(ev.ev_id, self._booking.get(ev.ev_id, ""))
        finally:
            for lk in reversed(locks):
                lk.release()

    def _forget(self, ev: EV) -> None:
        """Take ``ev`` out of its station's state (call with its station's lock and the book's lock held):
        the other EVs' rows are rebuilt, the profile is unknown again and the remembered cuts no longer hold."""
        sid = ev.station
        self._occupancy[sid][self._window_mask(ev)] -= 1
        rows = StationRows(self.n_periods, self.dt_h)
        for e in self._evs.values():
            if e.station == sid:
                rows.append(self._window_mask(e), *self._row(e))
        self._station_rows[sid] = rows  # without the remembered cuts: they no longer hold
        self._profile_kw[sid] = None

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
                mask = self._window_mask(ev)
                self._occupancy[ev.station][mask] += 1
                self._station_rows[ev.station].append(mask, *self._row(ev))
                self._profile_kw[ev.station] = None  # the preloaded EVs were not checked: the next one runs the LP
            self.n_preloaded += len(evs)

    def restore(self, journal: ReservationJournal) -> None:
        """Attach ``journal`` (call after ``preload``): book the reservations it holds, close the book if it was
        closed; every later acceptance and the closing are written to it."""
        evs = journal.accepted()
        journaled = {ev.ev_id for ev in evs}
        self._owner.update(journal.owners())
        self._booking.update(journal.bookings())
        self._cancelled_bookings.update(journal.cancelled_bookings())
        gone = journal.cancelled()
        self._cancelled |= gone - journaled
        with self._lock:  # a preloaded (case) EV its owner cancelled or amended: the journal's word holds
            for ev_id in [i for i in self._evs if i in gone or i in journaled]:
                self._forget(self._evs.pop(ev_id))
                self.n_preloaded -= 1
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


def _level_fill(headroom_kw: np.ndarray, p_kw: float, need_kw_periods: float) -> np.ndarray | None:
    """Per-period power x (0 <= x <= min(p_kw, headroom)) with sum(x) >= ``need_kw_periods`` that leaves the
    most even headroom: x = min(p_kw, max(0, headroom - level)) for the highest level that still meets the need;
    None when even x = min(p_kw, headroom) falls short."""
    top = np.minimum(headroom_kw, p_kw)
    if top.sum() < need_kw_periods:
        return None
    points = np.unique(np.maximum(np.concatenate([headroom_kw, headroom_kw - p_kw, [0.0]]), 0.0))  # ascending
    drawn = np.minimum(p_kw, np.maximum(headroom_kw[None, :] - points[:, None], 0.0)).sum(axis=1)  # descending
    k = int(np.searchsorted(-drawn, -need_kw_periods, side="right")) - 1  # last breakpoint still meeting the need
    level = points[k]
    if k + 1 < points.size and drawn[k] > need_kw_periods:  # linear between breakpoints k and k + 1
        level += (drawn[k] - need_kw_periods) / (drawn[k] - drawn[k + 1]) * (points[k + 1] - points[k])
    level = max(level * (1 - 1e-12) - 1e-12, 0.0)  # on the safe side of rounding: a little more than the need
    return np.minimum(p_kw, np.maximum(headroom_kw - level, 0.0))
