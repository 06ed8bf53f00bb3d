"""A durable reservation journal: accepted reservations survive a crash of the aggregator service.

``ReservationBook`` writes every accepted EV (and the closing of the book when the envelopes are first
sent) to this SQLite file before it answers, so a restarted ``gridcoord serve aggregator --state-dir DIR``
holds exactly the reservations it had confirmed and, once closed, stays closed with the same fleet: the
DSO it serves gets the same envelopes and disaggregation as before the crash. The service's other state
that an answer depends on is kept too (``save_state``/``load_state``): the DSO's published time-of-use
tariff and the last re-booking request (no-shows, late arrivals), so a restart between a re-booking and its
settlement settles against the same fleet. WAL mode with ``synchronous=FULL``: an answered reservation is on
disk.

The journal names the aggregator and the fleet it was started with (a fingerprint of the preloaded EV
ids); opening it for another aggregator or another fleet is refused with the file named, so a state
directory cannot silently mix two trials.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aggregator.fleet import EV, FleetError

FORMAT = 1


def fleet_fingerprint(evs: Sequence[EV]) -> str:
    """SHA-256 over the preloaded EVs' data (order included)."""
    h = hashlib.sha256()
    for ev in evs:
        h.update(json.dumps(dataclasses.asdict(ev), sort_keys=True).encode() + b"\n")
    return h.hexdigest()


def _ev_from_json(text: str) -> EV:
    data = json.loads(text)
    data["alt_stations"] = tuple(data.get("alt_stations", ()))
    return EV(**data)


class ReservationJournal:
    """Append-only record of one aggregator's accepted reservations and of the book's closing."""

    def __init__(self, path: str | Path, operator_id: str, preloaded: Sequence[EV]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            with self._conn:
                self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                self._conn.execute("CREATE TABLE IF NOT EXISTS evs (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                                   "ev_id TEXT NOT NULL UNIQUE, data TEXT NOT NULL)")
                self._conn.execute("CREATE TABLE IF NOT EXISTS cancelled (ev_id TEXT PRIMARY KEY)")
                self._conn.execute("CREATE TABLE IF NOT EXISTS cancelled_bookings "
                                   "(booking TEXT PRIMARY KEY, ev_id TEXT NOT NULL)")
                self._conn.execute("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            columns = {r[1] for r in self._conn.execute("PRAGMA table_info(evs)").fetchall()}
            # a journal written before bookings had owners or tokens: none of its bookings has one
            for column in ("owner", "booking"):
                if column not in columns:
                    with self._conn:
                        self._conn.execute(f"ALTER TABLE evs ADD COLUMN {column} TEXT")
            meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise FleetError(f"reservation journal {self.path}: not a readable SQLite file ({exc})") from None
        want = {"format": str(FORMAT), "operator_id": operator_id, "fleet": fleet_fingerprint(preloaded)}
        if not meta:
            with self._conn:
                self._conn.executemany("INSERT INTO meta VALUES (?, ?)", [*want.items(), ("closed", "0")])
            return
        for key, value in want.items():
            if meta.get(key) != value:
                raise FleetError(f"reservation journal {self.path}: written for {key} {meta.get(key)!r}, this "
                                 f"aggregator has {value!r}; use another --state-dir or remove the file")

    def accepted(self) -> list[EV]:
        """The journaled reservations, in acceptance order."""
        with self._lock:
            rows = self._conn.execute("SELECT data FROM evs ORDER BY seq").fetchall()
        return [_ev_from_json(r[0]) for r in rows]

    def owners(self) -> dict[str, str]:
        """ev id -> the identity that booked it, for the journaled reservations that have one."""
        with self._lock:
            rows = self._conn.execute("SELECT ev_id, owner FROM evs WHERE owner IS NOT NULL").fetchall()
        return {r[0]: r[1] for r in rows}

    def bookings(self) -> dict[str, str]:
        """ev id -> the token of its current booking, for the journaled reservations that have one."""
        with self._lock:
            rows = self._conn.execute("SELECT ev_id, booking FROM evs WHERE booking IS NOT NULL").fetchall()
        return {r[0]: r[1] for r in rows}

    def cancelled_bookings(self) -> dict[str, str]:
        """Token -> ev id of every cancelled booking (kept after the id is booked again)."""
        with self._lock:
            rows = self._conn.execute("SELECT booking, ev_id FROM cancelled_bookings").fetchall()
        return {r[0]: r[1] for r in rows}

    def cancelled(self) -> set[str]:
        """Ids whose reservation was cancelled and not booked again since."""
        with self._lock:
            rows = self._conn.execute("SELECT ev_id FROM cancelled").fetchall()
        return {r[0] for r in rows}

    @property
    def closed(self) -> bool:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'closed'").fetchone()
        return row is not None and row[0] == "1"

    def append(self, ev: EV, owner: str | None = None, booking: str | None = None) -> None:
        """Record an accepted reservation, who booked it and its token (committed before the caller answers)."""
        with self._lock, self._conn:
            self._conn.execute("INSERT INTO evs (ev_id, data, owner, booking) VALUES (?, ?, ?, ?)",
                               (ev.ev_id, json.dumps(dataclasses.asdict(ev), sort_keys=True), owner, booking))
            self._conn.execute("DELETE FROM cancelled WHERE ev_id = ?", (ev.ev_id,))

    def remove(self, ev_id: str, replacement: EV | None = None, owner: str | None = None,
               booking: str | None = None) -> None:
        """Record a cancellation (``replacement`` None; ``booking`` the cancelled token) or an amendment of
        ``ev_id`` (kept by ``owner`` under the same token ``booking``), in one transaction."""
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM evs WHERE ev_id = ?", (ev_id,))
            if replacement is None:
                self._conn.execute("INSERT OR IGNORE INTO cancelled (ev_id) VALUES (?)", (ev_id,))
                if booking is not None:
                    self._conn.execute("INSERT OR IGNORE INTO cancelled_bookings (booking, ev_id) VALUES (?, ?)",
                                       (booking, ev_id))
            else:
                self._conn.execute("INSERT INTO evs (ev_id, data, owner, booking) VALUES (?, ?, ?, ?)",
                                   (replacement.ev_id, json.dumps(dataclasses.asdict(replacement), sort_keys=True),
                                    owner, booking))

    def save_state(self, key: str, value: Any) -> None:
        """Keep ``value`` (JSON-serialisable; floats round-trip exactly) under ``key``, replacing what was
        there (committed before the caller answers)."""
        text = json.dumps(value, allow_nan=False)
        with self._lock, self._conn:
            self._conn.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, text))

    def load_state(self, key: str) -> Any:
        """What ``save_state`` kept under ``key``, or None."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def close_book(self) -> None:
        with self._lock, self._conn:
            self._conn.execute("UPDATE meta SET value = '1' WHERE key = 'closed'")

    def shutdown(self) -> None:
        with self._lock:
            self._conn.close()
