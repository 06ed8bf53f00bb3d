"""Load EV charging sessions from a CSV export (ACN-Data-like or gridcoord's own column names).

Accepted column sets (header row required; extra columns are ignored):
- ACN-Data-like: ``connectionTime, disconnectTime, kWhDelivered, stationID`` (times ISO 8601 or RFC 1123,
  e.g. ``Wed, 25 Apr 2018 11:08:04 GMT``; only the time of day is kept, converted to hours);
  optional ``sessionID``.
- gridcoord: ``arrival_h, departure_h, energy_kwh, station`` (hours after midnight); optional ``ev_id``.
Optional in both: ``p_charge_kw, p_discharge_kw, efficiency, capacity_kwh, soc_arrival_kwh``; missing
values take the defaults of :func:`load_sessions`. Every malformed row is reported with its line number
(1 = header) in one :class:`FleetError`; no row is dropped or repaired silently.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from aggregator.fleet import EV, FleetError, Station, validate_fleet

ACN_COLUMNS = ("connectionTime", "disconnectTime", "kWhDelivered", "stationID")
OWN_COLUMNS = ("arrival_h", "departure_h", "energy_kwh", "station")
_OPTIONAL = ("p_charge_kw", "p_discharge_kw", "efficiency", "capacity_kwh", "soc_arrival_kwh")


def _timestamp(text: str) -> datetime:
    """An ISO 8601 or RFC 1123 timestamp."""
    text = text.strip()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        try:
            dt = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"{text!r} is not an ISO 8601 or RFC 1123 timestamp") from exc
    return dt


def _hour(dt: datetime) -> float:
    return dt.hour + dt.minute / 60.0 + dt.second / 3600.0


def _number(row: dict[str, str], col: str) -> float:
    raw = (row.get(col) or "").strip()
    if raw == "":
        raise ValueError(f"{col} is empty")
    try:
        val = float(raw)
    except ValueError as exc:
        raise ValueError(f"{col}={raw!r} is not a number") from exc
    if not math.isfinite(val):
        raise ValueError(f"{col}={raw!r} is not finite")
    return val


def load_sessions(
    path: str | Path,
    stations: Sequence[Station],
    dt_h: float = 1.0,
    n_periods: int = 24,
    p_charge_kw: float = 7.0,
    p_discharge_kw: float = 0.0,
    efficiency: float = 0.95,
    capacity_kwh: float = 60.0,
    soc_arrival_share: float = 0.2,
) -> list[EV]:
    """EVs of the CSV at ``path`` for ``stations``; FleetError listing every bad row by line number.

    Defaults (used where a column is absent or empty): charger ``p_charge_kw``, V2G ``p_discharge_kw``,
    one-way ``efficiency``, battery ``capacity_kwh``, stored energy on arrival ``soc_arrival_share`` x
    capacity. A session must fit a cyclic day: its dwell (departure - arrival) is taken modulo 24 h.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as fh:
        lines = [ln for ln in fh if not ln.lstrip().startswith("#")]  # '#' lines are comments
    reader = csv.DictReader(lines)
    header = reader.fieldnames or []
    if all(c in header for c in OWN_COLUMNS):
        arr_col, dep_col, e_col, st_col, id_col, timestamps = (*OWN_COLUMNS, "ev_id", False)
    elif all(c in header for c in ACN_COLUMNS):
        arr_col, dep_col, e_col, st_col, id_col, timestamps = (*ACN_COLUMNS, "sessionID", True)
    else:
        raise FleetError(
            f"{path}: header {header} has neither {', '.join(OWN_COLUMNS)} nor {', '.join(ACN_COLUMNS)}"
        )
    known = {s.station_id for s in stations}
    evs: list[EV] = []
    errors: list[str] = []
    line_of: dict[str, int] = {}
    n_comment_before = _comment_lines(path)
    for k, row in enumerate(reader):
        line = n_comment_before[k + 1] + k + 2  # file line number of this data row
        try:
            if None in row or any(v is None for v in row.values()):
                raise ValueError("wrong number of fields")
            if timestamps:
                t_in, t_out = _timestamp(row[arr_col]), _timestamp(row[dep_col])
                try:
                    dwell_h = (t_out - t_in).total_seconds() / 3600.0
                except TypeError as exc:  # one aware, one naive
                    raise ValueError(f"{arr_col} and {dep_col} mix time zones") from exc
                if not 0 < dwell_h < n_periods * dt_h:
                    raise ValueError(f"{dep_col} - {arr_col} = {dwell_h:.4g} h must be in (0, {n_periods * dt_h}) h")
                arrival, departure = _hour(t_in), _hour(t_out)
            else:
                arrival, departure = _number(row, arr_col), _number(row, dep_col)
            need = _number(row, e_col)
            station = (row[st_col] or "").strip()
            if station not in known:
                raise ValueError(f"{st_col}={station!r} is not a known station")
            opt = {c: _number(row, c) for c in _OPTIONAL if (row.get(c) or "").strip()}
            cap = opt.get("capacity_kwh", capacity_kwh)
            ev_id = (row.get(id_col) or "").strip() or f"line-{line}"
            ev = EV(
                ev_id=ev_id, arrival_h=arrival, departure_h=departure, energy_need_kwh=need, capacity_kwh=cap,
                soc_arrival_kwh=opt.get("soc_arrival_kwh", soc_arrival_share * cap),
                p_charge_kw=opt.get("p_charge_kw", p_charge_kw),
                p_discharge_kw=opt.get("p_discharge_kw", p_discharge_kw),
                efficiency=opt.get("efficiency", efficiency), station=station,
            )
            validate_fleet([ev], stations, dt_h, n_periods)
            if ev_id in line_of:
                raise ValueError(f"id {ev_id!r} repeats line {line_of[ev_id]}")
            line_of[ev_id] = line
            evs.append(ev)
        except (ValueError, KeyError) as exc:  # FleetError is a ValueError
            errors.append(f"line {line}: {exc}")
    if errors:
        raise FleetError(f"{path}: {len(errors)} malformed row(s):\n  " + "\n  ".join(errors))
    return evs


def _comment_lines(path: Path) -> list[int]:
    """counts[r] = comment lines before the r-th non-comment line (r = 0 is the header)."""
    counts: list[int] = []
    seen = 0
    with path.open(encoding="utf-8") as fh:
        for ln in fh:
            if ln.lstrip().startswith("#"):
                seen += 1
            else:
                counts.append(seen)
    return counts


def write_sessions(path: str | Path, evs: Sequence[EV], comment: str = "") -> None:
    """Write EVs in gridcoord's column set (round-trips through :func:`load_sessions`)."""
    cols = ("ev_id", *OWN_COLUMNS, *_OPTIONAL)
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        for c in comment.splitlines():
            fh.write(f"# {c}\n")
        w = csv.writer(fh)
        w.writerow(cols)
        for ev in evs:
            w.writerow([ev.ev_id, f"{ev.arrival_h:.4f}", f"{ev.departure_h:.4f}", f"{ev.energy_need_kwh:.4f}",
                        ev.station, ev.p_charge_kw, ev.p_discharge_kw, ev.efficiency, ev.capacity_kwh,
                        f"{ev.soc_arrival_kwh:.4f}"])


__all__ = ["ACN_COLUMNS", "OWN_COLUMNS", "load_sessions", "write_sessions"]
