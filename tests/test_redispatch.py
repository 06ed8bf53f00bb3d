"""No-show and late-arrival re-dispatch (reduced: 40 EVs, base load x 0.8): the executed periods stay as
dispatched, the no-shows are gone, late EVs charge only after they come, every remaining reservation is met,
and with nothing changed the re-dispatch gives back the day-ahead optimum."""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pytest

from aggregator.fleet import FleetError, window_of
from core.case import load_case
from orchestrator.studies.redispatch import pick_events, redispatch
from orchestrator.studies.scheduled_charging import (
    ScenarioRun,
    _redispatch_metrics,
    _redispatch_scenario,
    add_arguments,
    run_scenario,
    scenario_metrics,
)
from orchestrator.system.embedded import FeederSystem, build_system

T_FROM = 8


@pytest.fixture(scope="module")
def day() -> tuple[FeederSystem, ScenarioRun]:
    spec = load_case("ieee33-sched")
    spec = replace(spec, feeders=(replace(spec.feeders[0], ev_count=40, load_scale=0.8),))
    feeder = build_system(spec).feeders[0]
    return feeder, run_scenario(feeder, "ev_pq", ac=False)


def test_nothing_changed_gives_the_day_ahead_optimum(day) -> None:
    feeder, run = day
    r = redispatch(feeder, run, T_FROM, [], {}, ac=False)
    assert r.objective == pytest.approx(r.day_ahead_objective, rel=1e-6)
    np.testing.assert_allclose(r.run.report.p_import_mw, run.report.p_import_mw, atol=1e-5)


def test_no_shows_and_late_arrivals_are_re_dispatched_inside_the_envelopes(day) -> None:
    feeder, run = day
    no_show, late = pick_events(feeder.fleet, T_FROM, 0.25, 0.25, 3.0, 1.0, 24, seed=3)
    assert no_show and late
    r = redispatch(feeder, run, T_FROM, no_show, late, ac=True)
    d0, d = run.dispatch, r.run.dispatch
    # the executed periods are the day-ahead dispatch
    for a, b in ((d0.p_import_mw, d.p_import_mw), (d0.ev_station_p_mw, d.ev_station_p_mw),
                 (d0.ev_station_q_mvar, d.ev_station_q_mvar), (d0.pv_q_mvar, d.pv_q_mvar),
                 (d0.wind_q_mvar, d.wind_q_mvar)):
        np.testing.assert_allclose(np.asarray(b)[..., :T_FROM], np.asarray(a)[..., :T_FROM], atol=1e-5)
    ids = [ev.ev_id for ev in r.fleet]
    assert len(ids) == len(feeder.fleet) - len(no_show) and not set(no_show) & set(ids)
    # every EV that came is served (late ones their capped need), from the per-EV schedules
    assert r.run.ev_unmet_kwh.max() <= 1e-3 and r.run.ev_unmet_kwh.size == len(ids)
    sched = r.schedules
    for i, ev in enumerate(r.fleet):
        start, dwell = window_of(ev.arrival_h, ev.departure_h, 1.0, 24)
        outside = np.ones(24, dtype=bool)
        outside[(start + np.arange(dwell)) % 24] = False
        assert np.abs(sched.p_ch_kw[i, outside]).max(initial=0.0) <= 1e-6, ev.ev_id
        if ev.ev_id in late:
            assert ev.arrival_h == late[ev.ev_id] and start >= T_FROM
    assert d.ev_p_mw.sum() < d0.ev_p_mw.sum()  # the no-shows' energy is no longer bought
    assert r.run.report.ac_loss_error_rel <= 0.01 and r.run.report.ac_max_voltage_error_pu <= 0.002


def test_bad_events_are_refused_naming_the_ev(day) -> None:
    feeder, run = day
    wrapped = next(ev for ev in feeder.fleet if ev.departure_h <= ev.arrival_h)
    daytime = next(ev for ev in feeder.fleet if T_FROM <= ev.arrival_h < ev.departure_h)
    cases = [((["nobody"], {}), "EV 'nobody': not in the dispatched fleet"),
             (([wrapped.ev_id], {}), f"EV '{wrapped.ev_id}': its window"),
             (([daytime.ev_id], {daytime.ev_id: daytime.arrival_h + 1}), "both as a no-show and as late"),
             (([], {daytime.ev_id: daytime.arrival_h - 1}), "must be after its booked arrival"),
             (([], {daytime.ev_id: float("nan")}), "late arrival_h=nan")]
    for (no_show, late), text in cases:
        with pytest.raises(FleetError, match=text.replace("(", r"\(")):
            redispatch(feeder, run, T_FROM, no_show, late, ac=False)
    with pytest.raises(FleetError, match="t_from=0"):
        redispatch(feeder, run, 0, [], {}, ac=False)


def test_study_option_adds_the_redispatch_scenario(day) -> None:
    """The study's options draw the events and report the change against ev_pq (the full study run with
    ``--redispatch-hour`` writes the same as scenario ``redispatch``; its run directory is the run contract)."""
    feeder, run = day
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--redispatch-hour", "8", "--no-show-share", "0.25", "--late-share", "0.25",
                              "--no-ac-check"])
    r = _redispatch_scenario(args, feeder, run)
    s = scenario_metrics(r.run) | _redispatch_metrics(r, scenario_metrics(run))
    assert s["n_no_show"] > 0 and s["n_late"] > 0 and s["n_evs"] == len(feeder.fleet) - s["n_no_show"]
    assert s["ev_unmet_max_kwh"] <= 1e-3 and s["redispatch_period"] == 8
    assert s["ev_energy_delta_mwh"] < 0 and s["loss_change_vs_ev_pq"] < 0  # less EV energy through the feeder
    assert s["objective_redispatch"] == pytest.approx(s["loss_mwh"], rel=1e-6)  # this case minimises its loss
    assert s["local_cost_delta_usd"] == pytest.approx(
        sum(r.run.dispatch.cost_usd.values()) - sum(run.dispatch.cost_usd.values()), abs=1e-9)
