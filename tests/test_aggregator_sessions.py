"""CSV session loader: both column sets, every malformed row reported with its line number."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.fleet import FleetError, Station, synthetic_fleet
from aggregator.sessions import load_sessions, write_sessions

STATIONS = [Station("cs-a", 5, 800.0), Station("cs-b", 18, 800.0), Station("cs-c", 30, 800.0)]
EXAMPLE = Path(__file__).resolve().parents[1] / "aggregator" / "data" / "example_sessions.csv"


def test_example_acn_file_loads() -> None:
    evs = load_sessions(EXAMPLE, STATIONS)
    assert len(evs) == 20
    assert evs[0].ev_id == "ev-0000" and evs[0].station == "cs-b"
    assert evs[0].arrival_h == pytest.approx(17 + 36 / 60 + 15 / 3600)
    assert evs[0].energy_need_kwh == pytest.approx(8.702)


def test_own_columns_round_trip(tmp_path: Path) -> None:
    fleet = synthetic_fleet(50, STATIONS, seed=3)
    path = tmp_path / "s.csv"
    write_sessions(path, fleet, comment="synthetic test fleet")
    back = load_sessions(path, STATIONS)
    assert [e.ev_id for e in back] == [e.ev_id for e in fleet]
    for a, b in zip(back, fleet, strict=True):
        assert a.energy_need_kwh == pytest.approx(b.energy_need_kwh, abs=1e-4)
        assert a.p_discharge_kw == b.p_discharge_kw and a.station == b.station


def test_every_bad_row_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "# comment line\n"
        "ev_id,arrival_h,departure_h,energy_kwh,station\n"
        "ok-1,18,7,10,cs-a\n"  # line 3
        "bad-dep,18,18.5,10,cs-a\n"  # line 4: no full period
        "bad-e,18,7,-3,cs-b\n"  # line 5
        "bad-st,18,7,10,nowhere\n"  # line 6
        "bad-nan,nan,7,10,cs-a\n"  # line 7
        "bad-num,18,x,10,cs-a\n"  # line 8
        "ok-2,8,17,5,cs-c\n"  # line 9
        "bad-need,8,10,30,cs-c\n"  # line 10: 30 kWh in 2 h at 7 kW
        "short,8\n"  # line 11
    )
    with pytest.raises(FleetError) as err:
        load_sessions(path, STATIONS)
    msg = str(err.value)
    assert "7 malformed row(s)" in msg
    for line, text in [(4, "departure_h"), (5, "energy_need_kwh"), (6, "nowhere"), (7, "not finite"),
                       (8, "'x' is not a number"), (10, "energy need cannot be met"), (11, "fields")]:
        assert f"line {line}: " in msg and text in msg.split(f"line {line}: ")[1].split("\n")[0], (line, msg)
    assert "line 3" not in msg and "line 9" not in msg


def test_acn_bad_times(tmp_path: Path) -> None:
    path = tmp_path / "acn.csv"
    path.write_text(
        "connectionTime,disconnectTime,kWhDelivered,stationID\n"
        '"Wed, 25 Apr 2018 11:08:04 GMT","Wed, 25 Apr 2018 10:08:04 GMT",5,cs-a\n'
        '"2018-04-25T08:00:00","2018-04-26T12:00:00",5,cs-a\n'
        "yesterday,today,5,cs-a\n"
    )
    with pytest.raises(FleetError) as err:
        load_sessions(path, STATIONS)
    msg = str(err.value)
    assert "line 2: disconnectTime - connectionTime = -1 h" in msg
    assert "line 3: disconnectTime - connectionTime = 28 h" in msg
    assert "line 4: 'yesterday' is not" in msg


def test_unknown_header(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(FleetError, match="header"):
        load_sessions(path, STATIONS)
