"""Bad input is refused before solving with a message naming the culprit; the CLI exits non-zero
without a traceback; a failed solve writes no result."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.case import CASES_DIR
from orchestrator.cli.main import main

INLINE_BRANCHES = [
    {"from_node": 1, "to_node": 2, "r_ohm": 0.0922, "x_ohm": 0.047},
    {"from_node": 2, "to_node": 3, "r_ohm": 0.493, "x_ohm": 0.2511},
    {"from_node": 3, "to_node": 4, "r_ohm": 0.366, "x_ohm": 0.1864},
]
INLINE_LOADS = [{"node": 2, "p_mw": 0.1, "q_mvar": 0.06}, {"node": 3, "p_mw": 0.09, "q_mvar": 0.04},
                {"node": 4, "p_mw": 0.12, "q_mvar": 0.08}]


def small_case() -> dict[str, Any]:
    """The reference transmission system with one small inline feeder (fast to build)."""
    ref = yaml.safe_load((CASES_DIR / "ieee30-3x33.yaml").read_text())
    ref["name"] = "small"
    ref["feeders"] = [{
        "id": "f1", "bus": 7, "network": "inline", "branches": [dict(b) for b in INLINE_BRANCHES],
        "loads": [dict(x) for x in INLINE_LOADS], "load_profile": "load_lv_semiurb4", "pv_profile": "pv_pv3",
        "pv": [{"node": 4, "capacity_mw": 0.1}],
        "stations": [{"id": "f1-s1", "node": 3, "p_max_kw": 200}],
        "evs": {"count": 5, "seed": 3},
    }]
    return ref


def run_cli(tmp_path: Path, case: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(case))
    code = main(["run", "--case", str(path), "--out", str(tmp_path / "out"), "--no-ac-check"])
    return code, capsys.readouterr().err


def test_small_inline_case_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(tmp_path, small_case(), capsys)
    assert code == 0, err
    assert (tmp_path / "out" / "summary.json").is_file()


def test_negative_impedance_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = small_case()
    case["feeders"][0]["branches"][1]["r_ohm"] = -0.1
    code, err = run_cli(tmp_path, case, capsys)
    assert code == 2
    assert "branch 2-3" in err and "r_ohm=-0.1" in err
    assert not (tmp_path / "out").exists()


def test_unknown_bus_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = small_case()
    case["feeders"][0]["bus"] = 31
    code, err = run_cli(tmp_path, case, capsys)
    assert code == 2 and "bus=31 is an unknown bus" in err


def test_not_radial_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = small_case()
    case["feeders"][0]["branches"][2] = {"from_node": 3, "to_node": 2, "r_ohm": 0.3, "x_ohm": 0.2}
    code, err = run_cli(tmp_path, case, capsys)
    assert code == 2 and "radial" in err and "f1" in err


def test_infeasible_ev_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = small_case()
    case["feeders"][0]["evs"]["list"] = [{
        "id": "ev-greedy", "arrival_h": 18.0, "departure_h": 20.0, "energy_need_kwh": 40.0,
        "capacity_kwh": 60.0, "p_charge_kw": 7.0, "station": "f1-s1"}]
    code, err = run_cli(tmp_path, case, capsys)
    assert code == 2
    assert "ev-greedy" in err and "energy_need_kwh=40" in err


def test_infeasible_solve_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = small_case()
    case["feeders"][0]["load_scale"] = 400.0  # 124 MW on a 4-node 12.66 kV feeder: voltages collapse
    code, err = run_cli(tmp_path, case, capsys)
    assert code == 3
    assert "infeasible" in err or "status" in err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_no_traceback_from_the_console(tmp_path: Path) -> None:
    case = small_case()
    case["feeders"][0]["pv"][0]["node"] = 9
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(case))
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "run", "--case", str(path), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "pv[0].node=9 is an unknown node" in proc.stderr


def test_unknown_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--strategy", "magic"]) == 2
    assert "unknown strategy 'magic'" in capsys.readouterr().err


def test_repropose_is_a_csso_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--strategy", "admm", "--repropose"]) == 2
    assert "--repropose: a csso option, not for --strategy admm" in capsys.readouterr().err


def test_ray_actors_must_be_positive_and_on_ray(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--strategy", "csso", "--ray-actors", "0"]) == 2
    assert "--ray-actors 0: a number >= 1, with --executor ray only" in capsys.readouterr().err
    assert main(["run", "--strategy", "csso", "--ray-actors", "2", "--executor", "serial"]) == 2
    assert "--ray-actors 2: a number >= 1, with --executor ray only" in capsys.readouterr().err


def test_cases_lists_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cases"]) == 0
    assert "ieee30-3x33" in capsys.readouterr().out


def test_unreachable_service_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    services = tmp_path / "services.yaml"
    services.write_text("tso: 127.0.0.1:1\ndso1: 127.0.0.1:1\ndso2: 127.0.0.1:1\ndso3: 127.0.0.1:1\n")
    code = main(["run", "--strategy", "admm", "--services", str(services), "--out", str(tmp_path / "out"),
                 "--insecure"])
    err = capsys.readouterr().err
    assert code == 4, err
    assert "unavailable" in err and "dso1" in err
    assert not (tmp_path / "out").exists()


def test_services_refuse_centralized(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    services = tmp_path / "services.yaml"
    services.write_text("tso: 127.0.0.1:1\n")
    assert main(["run", "--strategy", "centralized", "--services", str(services)]) == 2
    assert "needs every operator's private data" in capsys.readouterr().err
