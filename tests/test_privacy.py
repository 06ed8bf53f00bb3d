"""Privacy: the threat model against the proto descriptors and the strategies' recorded calls, the zCDP
accountant against a hand-computed composition, the Gaussian mechanism's noise, DP runs on the tiny case
(feasible dispatch, epsilon_total in the summary), the attacks, and a DP DSO behind gRPC."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.privacy import GaussianMechanism, PrivacyBudgetError, PrivacyConfig, epsilon_from_rho, rho_from_epsilon
from core.subspace import Evaluate, MergeColumns, Optimize, Prox, Report, Respond
from orchestrator.runtime.transcript import Transcript
from orchestrator.strategies import STRATEGIES, RunOptions, get_strategy
from orchestrator.studies import privacy_threat as threat
from orchestrator.studies.privacy_attacks import ATTACK_PARTIES, attack, party_view, r2

TINY = str(Path(__file__).parent / "data" / "tiny-2x33.yaml")
README = Path(__file__).resolve().parents[1] / "README.md"
#: the RPC each call object of ``core.subspace`` travels as (``orchestrator.system.services``)
RPC_OF = {Evaluate: "Evaluate", Optimize: "Optimize", Respond: "Respond", Prox: "Prox", Report: "Report",
          MergeColumns: "Merge"}


# -- threat model ----------------------------------------------------------------------------------------------

def test_threat_model_fields_are_the_proto_descriptors_fields() -> None:
    for name, cls in STRATEGIES.items():
        for role, rpcs in cls.rpcs.items():
            service = threat.ROLE_SERVICE[role]
            for rpc in rpcs:
                assert rpc in service.methods_by_name, f"{name}: {role}.{rpc} is not an RPC of {service.full_name}"
        if not cls.rpcs:
            continue
        views = threat.party_views(cls.rpcs)
        for v in (f for fields in views.values() for f in fields):
            v.reveals  # noqa: B018 - every field has an entry (KeyError otherwise)
        # the orchestrator receives exactly the response fields of every RPC the strategy declares
        expected = {f"{m.output_type.name}.{f.name}" for role, rpcs in cls.rpcs.items() for rpc in rpcs
                    for m in [threat.ROLE_SERVICE[role].methods_by_name[rpc]] for f in m.output_type.fields
                    if f.message_type is None and m.output_type.name not in threat.WHOLE_MESSAGES}
        got = {v.field for v in views["orchestrator"]}
        assert expected <= got, f"{name}: fields missing from the threat model: {sorted(expected - got)}"
    with pytest.raises(KeyError, match="no entry"):
        threat.reveals("OptimizeResponse.a_field_nobody_described")


def test_threat_model_says_who_sees_what() -> None:
    rows = threat.threat_table(STRATEGIES)
    seen = {(r["strategy"], r["party"], r["field"]) for r in rows}
    # every iterative strategy shows the DSOs' forecast (= net load) to the orchestrator and a link observer
    for s in ("csso", "admm", "gradient"):
        assert (s, "orchestrator", "ForecastResponse.p_import_mw") in seen
        assert (s, "link-observer", "ForecastResponse.p_import_mw") in seen
    # only csso hands a DSO the whole boundary (the other DSOs' imports) in its optimisation request
    assert ("csso", "other-dso", "OptimizeRequest.center_mw") in seen
    assert not any(p == "other-dso" for s, p, _ in seen if s in ("admm", "gradient", "dual"))
    assert ("csso", "tso", "DsoPoints.points_mw") in seen


def test_readme_carries_the_generated_threat_table() -> None:
    assert threat.threat_markdown(STRATEGIES) in README.read_text(), \
        "README 'Privacy' threat table is stale: paste orchestrator.studies.privacy_threat.threat_markdown(STRATEGIES)"


# -- accountant and mechanism ------------------------------------------------------------------------------------

def test_zcdp_composition_against_a_hand_computed_value() -> None:
    # epsilon 1, delta 1e-5: ln(1e5) = 11.512925465; sqrt(rho) = sqrt(12.512925465) - sqrt(11.512925465)
    # = 3.537361 - 3.393070 = 0.144291; rho = 0.0208199 (by hand)
    assert rho_from_epsilon(1.0, 1e-5) == pytest.approx(0.0208199, rel=1e-4)
    cfg = PrivacyConfig(epsilon=1.0, delta=1e-5, releases=10)
    # four of the ten releases: rho = 0.00832796, epsilon = rho + 2 sqrt(rho ln 1e5) = 0.00832796 + 0.619272
    mech = GaussianMechanism(cfg, "dso-x")
    for _ in range(4):
        mech.release("r", {"x": (np.zeros(3), 1.0), "c": (0.0, 2.0)})
    assert mech.accountant.rho == pytest.approx(0.00832796, rel=1e-4)
    assert mech.accountant.epsilon(1e-5) == pytest.approx(0.627600, rel=1e-4)
    for _ in range(6):
        mech.release("r", {"x": (np.zeros(3), 1.0), "c": (0.0, 2.0)})
    assert mech.accountant.epsilon(1e-5) == pytest.approx(1.0, rel=1e-9)  # the whole plan spends the budget
    with pytest.raises(PrivacyBudgetError, match="dso-x: privacy budget spent"):
        mech.release("one too many", {"x": (np.zeros(3), 1.0)})
    assert epsilon_from_rho(rho_from_epsilon(3.0, 1e-6), 1e-6) == pytest.approx(3.0)


def test_gaussian_noise_has_the_calibrated_scale() -> None:
    cfg = PrivacyConfig(epsilon=5.0, delta=1e-5, releases=400)
    mech = GaussianMechanism(cfg, "dso-y")
    sigma = cfg.sigma(2)  # two fields per release: sigma = sqrt(2 / (2 rho_r)) in units of the sensitivity
    assert sigma == pytest.approx(math.sqrt(2 / (2 * rho_from_epsilon(5.0, 1e-5) / 400)))
    draws = np.array([mech.release("r", {"x": (np.zeros(50), 0.2), "c": (0.0, 7.0)})["x"] for _ in range(400)])
    assert np.std(draws) == pytest.approx(sigma * 0.2, rel=0.03)
    with pytest.raises(ValueError, match="delta"):
        PrivacyConfig(epsilon=1.0, delta=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        PrivacyConfig(epsilon=-1.0)


# -- runs on the tiny case -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny() -> Any:
    from orchestrator.system.embedded import build_system

    return build_system(TINY)


def _run(system: Any, name: str, rounds: int, privacy: PrivacyConfig | None = None) -> tuple[Any, Transcript]:
    transcript = Transcript()
    # csso with first-order surfaces: the same calls, without the network fits (a faster test)
    extra: dict[str, Any] = {"executor": "serial", "transcript": transcript, f"{name}_max_rounds": rounds,
                             "csso_surrogate": "linear"}
    if privacy is not None:
        extra["privacy"] = privacy
        system = dataclasses.replace(system, privacy=privacy)
    result = get_strategy(name).run(system, RunOptions(progress=False, ac_check=False, extra=extra))
    return result, transcript


@pytest.fixture(scope="module")
def admm_runs(tiny: Any) -> dict[str, Any]:
    cfg = PrivacyConfig(epsilon=1.0, delta=1e-5, releases=4, seed=3)
    return {"exact": _run(tiny, "admm", 4), "dp": _run(tiny, "admm", 4, cfg), "cfg": cfg}


@pytest.mark.parametrize("name", ["admm", "csso", "gradient"])
def test_recorded_calls_are_the_declared_rpcs(tiny: Any, admm_runs: dict[str, Any], name: str) -> None:
    transcript = admm_runs["exact"][1] if name == "admm" else _run(tiny, name, 3)[1]
    used: dict[str, set[str]] = {"tso": set(), "dso": set()}
    for e in transcript.entries:
        used["tso" if e.subspace == 0 else "dso"].add(RPC_OF[type(e.call)])
    declared = STRATEGIES[name].rpcs
    for role in used:
        assert used[role] <= set(declared[role]), f"{name} {role}: {sorted(used[role] - set(declared[role]))}"
    assert "Forecast" in declared["dso"] and transcript.forecast is not None


def test_dp_run_is_feasible_and_accounts_its_epsilon(tiny: Any, admm_runs: dict[str, Any]) -> None:
    from orchestrator.results.run import summarize

    result, transcript = admm_runs["dp"]
    cfg: PrivacyConfig = admm_runs["cfg"]
    summary = summarize(tiny.spec, result)
    # forecast + 3 ADMM steps = 4 releases per DSO (the TSO alone evaluates the start): the whole plan, so
    # epsilon_total = 1
    assert result.privacy["releases"] == {"dso1": 4, "dso2": 4}
    assert summary["epsilon_total"] == pytest.approx(epsilon_from_rho(4 * cfg.rho_per_release, 1e-5))
    assert summary["epsilon_total"] == pytest.approx(1.0, rel=1e-9)
    # every operator dispatches the reported boundary: the DSOs their own feasible import, the TSO the same
    assert summary["max_boundary_mismatch_mw"] <= 1e-6
    assert result.tso.mismatch_mw <= 1e-6 and result.tso.penalty_usd <= 1e-3
    for fid, rep in result.feeders.items():
        assert rep.mismatch_mw <= 1e-6 and rep.penalty_usd <= 1e-3, fid
    # what left the DSOs is noisy: the forecast differs from the true one, marginal costs were withheld
    exact_forecast = tiny.forecast_mw() if tiny.privacy is None else None
    assert exact_forecast is not None and not np.allclose(transcript.forecast, exact_forecast)
    # and ADMM asked the DSOs for steps and the report only, never a marginal cost (a DP DSO's evaluation
    # withholds it: the service test below)
    calls = {type(e.call).__name__ for e in transcript.entries if e.subspace == 1}
    assert calls == {"Prox", "Report"}, calls  # Report: the end of the run


def test_attacks_reveal_the_forecast_without_noise_and_less_with_it(tiny: Any, admm_runs: dict[str, Any]) -> None:
    from dso.subspace import DsoSubspace
    from orchestrator.studies.privacy import leakage, public_shapes, truths

    spec = tiny.spec
    exact = [DsoSubspace(f.data, f.inputs, np.arange(k * spec.periods, (k + 1) * spec.periods))
             for k, f in enumerate(tiny.feeders)]
    clear = leakage(tiny, admm_runs["exact"][0], admm_runs["exact"][1], exact)
    noisy = leakage(tiny, admm_runs["dp"][0], admm_runs["dp"][1], exact)
    direct = [d for d in clear["parties"]["orchestrator"]["net_load"]]
    assert all(d["attack"] == "direct" and d["r2"] > 0.999 for d in direct), direct  # the forecast IS the net load
    assert clear["attack_r2_import"] > 0.999  # the final boundary is what is delivered
    assert noisy["messages_r2_net_load"] < clear["messages_r2_net_load"]
    # the cost curve: KKT inversion of the ADMM steps beats knowing nothing (relative error 1)
    assert clear["attack_rel_error_cost_curve"] < 1.0
    # the regression and the baseline are real estimators: R^2 of the truth against itself is 1
    tr = truths(tiny, admm_runs["exact"][0], exact)
    assert r2(tr[0].hourly["net_load"], tr[0].hourly["net_load"]) == 1.0
    views = [party_view(admm_runs["exact"][1], "tso", k, 2, spec.periods, spec.dt_h) for k in range(2)]
    res = attack(views, tr, public_shapes(spec), spec.periods)
    assert set(res) == {"net_load", "import", "pv", "ev_energy", "cost_curve"} and len(res["pv"]) == 2
    assert set(clear["parties"]) == set(ATTACK_PARTIES)


def test_regression_across_runs_pools_the_runs(tiny: Any, admm_runs: dict[str, Any]) -> None:
    """The attack across runs: averaging the first import over runs is the forecast again without noise; with a
    noisy run beside an exact one the average is between them (half the noise)."""
    from dso.subspace import DsoSubspace
    from orchestrator.studies.privacy import public_shapes, truths, views
    from orchestrator.studies.privacy_attacks import attack_across_runs

    spec = tiny.spec
    exact = [DsoSubspace(f.data, f.inputs, np.arange(k * spec.periods, (k + 1) * spec.periods))
             for k, f in enumerate(tiny.feeders)]
    tr = truths(tiny, admm_runs["exact"][0], exact)
    pub = public_shapes(spec)
    clear, noisy = views(tiny, admm_runs["exact"][1]), views(tiny, admm_runs["dp"][1])
    res = attack_across_runs([clear["orchestrator"], clear["orchestrator"]], tr, pub, spec.periods)
    assert set(res) == {"net_load", "pv"} and len(res["net_load"]) == 2
    assert all(d["r2_messages_only"] > 0.999 for d in res["net_load"]), res["net_load"]
    mixed = attack_across_runs([clear["orchestrator"], noisy["orchestrator"]], tr, pub, spec.periods)
    half = 0.5 * (clear["orchestrator"][0].first + noisy["orchestrator"][0].first)
    assert mixed["net_load"][0]["r2_messages_only"] >= r2(tr[0].hourly["net_load"], half) - 1e-12


def test_draws_are_pooled_and_price_runs_spread() -> None:
    from orchestrator.studies.privacy import pooled, price_factors

    a = {"gap_to_optimum": 0.01, "attack_r2_net_load": 0.5, "messages_r2_net_load": 0.2, "attack_r2_pv": 0.9,
         "attack_r2_ev_energy": 0.1, "feasible": True, "rounds": 9, "epsilon": 1.0}
    b = a | {"gap_to_optimum": 0.03, "messages_r2_net_load": 0.4, "feasible": False, "rounds": 8}
    out = pooled([a, b])
    assert out["gap_to_optimum"] == pytest.approx(0.02) and out["rounds"] == pytest.approx(8.5)
    assert out["gap_to_optimum_std"] == pytest.approx(math.sqrt(2) * 0.01)  # sample spread of 0.01, 0.03
    assert out["messages_r2_net_load_std"] == pytest.approx(math.sqrt(2) * 0.1)
    assert out["feasible"] is False and out["draws"] == 2
    assert math.isnan(pooled([a])["gap_to_optimum_std"])
    assert price_factors(0) == [] and price_factors(2) == [pytest.approx(1.1), pytest.approx(0.9)]
    assert len(set(price_factors(4))) == 4 and 1.0 not in price_factors(4)
    with pytest.raises(ValueError, match="--price-runs"):
        price_factors(-1)


def test_a_dp_dso_behind_grpc_sends_the_same_noisy_forecast(tiny: Any) -> None:
    from core.rpc import start_server
    from dso.service import DsoServicer
    from dso.subspace import DsoSubspace
    from orchestrator.system.services import PrivacyMismatch, RemoteDso

    cfg = PrivacyConfig(epsilon=1.0, delta=1e-5, releases=3, seed=7)
    f, t_n = tiny.feeders[0], tiny.spec.periods
    servicer = DsoServicer(f.feeder_id, n_periods=t_n, dt_h=tiny.spec.dt_h, n_global=2 * t_n)
    served = start_server([servicer.register], ["gridcoord.v1.DsoService"], "127.0.0.1:0")
    servicer.attach(DsoSubspace(f.data, f.inputs, np.arange(t_n), privacy=cfg))
    served.set_serving(True)
    try:
        dso = RemoteDso(f.feeder_id, f"127.0.0.1:{served.port}", "dp-test", t_n)
        embedded = dataclasses.replace(tiny, privacy=cfg).forecast_mw()[:t_n]
        assert np.allclose(dso.forecast(cfg), embedded)  # one mechanism, wherever the DSO runs
        # a run that expects exact values, or other DP settings, is refused before any coordination (the forecast
        # is the mechanism's first release, made once: asking again spends nothing)
        for expected, says in ((None, "expects exact values"), (dataclasses.replace(cfg, epsilon=2.0), "epsilon 2"),
                               (dataclasses.replace(cfg, releases=4), "over 4 releases")):
            with pytest.raises(PrivacyMismatch, match=f"operator 'dso1' sends the Gaussian mechanism at epsilon 1, "
                                                      f"delta 1e-05 over 3 releases, but this run {says}|{says}"):
                dso.forecast(expected)
        ev = dso.evaluate(embedded)
        assert np.isfinite(ev.cost_usd) and np.all(np.isnan(ev.sensitivity_usd_per_mwh))
        dso.respond(np.full(t_n, 40.0))
        with pytest.raises(Exception, match="privacy budget spent"):  # the 4th release is beyond the plan of 3
            dso.respond(np.full(t_n, 41.0))
    finally:
        served.stop(0.5)


@pytest.mark.parametrize(("argv", "message"), [
    (["--strategy", "admm", "--privacy", "dp"], "--privacy dp: give --epsilon"),
    (["--strategy", "admm", "--privacy", "dp", "--epsilon", "-1"], "epsilon=-1.0 must be > 0"),
    (["--strategy", "admm", "--privacy", "dp", "--epsilon", "1", "--delta", "2"], "delta=2.0 must be in (0, 1)"),
    (["--strategy", "isolated", "--privacy", "dp", "--epsilon", "1"], "strategy 'isolated' shares"),
    (["--strategy", "admm", "--epsilon", "1"], "--epsilon needs --privacy dp"),
])
def test_bad_privacy_flags_are_one_line_errors(argv: list[str], message: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.cli.main import main

    assert main(["run", "--case", TINY, "--out", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()
