"""Protobuf <-> plain data conversions round-trip, and malformed messages are refused naming the field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from core import convert
from core.icnn import SurrogateWeights
from core.rpc import InvalidArgument
from core.subspace import Evaluation, Proposal
from dso.report import FeederReport
from gridcoord.v1 import common_pb2
from tso.report import TsoReport

RNG = np.random.default_rng(0)


def test_weights_round_trip() -> None:
    w = SurrogateWeights(w=RNG.normal(size=(5, 3)), b=RNG.normal(size=5), v=RNG.uniform(size=5),
                        a=RNG.normal(size=3), c=1.5)
    back = convert.weights_from_proto(common_pb2.IcnnWeights.FromString(
        convert.weights_to_proto(w).SerializeToString()))
    for name in ("w", "b", "v", "a"):
        np.testing.assert_array_equal(getattr(back, name), getattr(w, name))
    assert back.c == w.c


def test_weights_refused_with_field_named() -> None:
    msg = convert.weights_to_proto(SurrogateWeights(w=np.ones((2, 2)), b=np.ones(2), v=np.ones(2), a=np.ones(2), c=0))
    msg.v[1] = -1.0
    with pytest.raises(InvalidArgument, match=r"weights\.v\[1\] = -1.0 must be >= 0"):
        convert.weights_from_proto(msg)
    msg.v[1] = float("nan")
    with pytest.raises(InvalidArgument, match=r"weights\.v\[1\] = nan is not finite"):
        convert.weights_from_proto(msg)
    msg.v[1] = 0.5
    del msg.a[:]
    with pytest.raises(InvalidArgument, match=r"weights\.a: expected 2 values, got 0"):
        convert.weights_from_proto(msg)


def test_others_index_checked() -> None:
    w = SurrogateWeights(w=np.ones((2, 3)), b=np.ones(2), v=np.ones(2), a=np.ones(3), c=0)
    terms = convert.others_to_proto([(np.array([0, 1, 2]), w)], ["tso"])
    assert len(convert.others_from_proto(terms, 3)) == 1
    with pytest.raises(InvalidArgument, match=r"others\[0\]\.index: entries must be in 0\.\.1"):
        convert.others_from_proto(terms, 2)


def test_evaluation_and_proposal_round_trip() -> None:
    ev = Evaluation(cost_usd=12.5, sensitivity_usd_per_mwh=RNG.normal(size=(3, 4)), penalty_usd=0.0,
                            mismatch_mw=1e-9, dt_h=1.0)
    back = convert.evaluation_from_proto(convert.evaluation_to_proto(ev), shape=(3, 4))
    np.testing.assert_array_equal(back.sensitivity_usd_per_mwh, ev.sensitivity_usd_per_mwh)
    np.testing.assert_array_equal(back.gradient, ev.gradient)
    assert (back.cost_usd, back.penalty_usd, back.mismatch_mw, back.dt_h) == (12.5, 0.0, 1e-9, 1.0)
    p = Proposal(x=RNG.normal(size=4), predicted_usd=3.0, ok=False)
    q = convert.proposal_from_proto(convert.proposal_to_proto(p))
    np.testing.assert_array_equal(q.x, p.x)
    assert (q.predicted_usd, q.ok) == (3.0, False)
    x, cost = convert.boundary_step_from_proto(convert.boundary_step_to_proto((np.ones((2, 3)), 7.0)), shape=(2, 3))
    assert x.shape == (2, 3) and cost == 7.0


def test_reports_round_trip() -> None:
    t, n = 4, 5
    tso = TsoReport(price_dso_usd_per_mwh=RNG.normal(size=(3, t)), cost_usd={"generation": 10.0},
                    transmission_loss_mwh=2.0, wind_p_mw=RNG.uniform(size=t), wind_avail_mw=RNG.uniform(size=t))
    back = convert.tso_report_from_proto(convert.tso_report_to_proto(tso), TsoReport)
    np.testing.assert_array_equal(back.price_dso_usd_per_mwh, tso.price_dso_usd_per_mwh)
    assert back.cost_usd == tso.cost_usd and back.transmission_loss_mwh == 2.0
    node: dict[str, Any] = {k: RNG.normal(size=(n, t))
            for k in ("p_load_mw", "q_load_mvar", "p_gen_mw", "q_gen_mvar", "p_ev_mw", "v_pu", "q_ev_mvar")}
    per: dict[str, Any] = {k: RNG.normal(size=t) for k in ("p_import_mw", "q_import_mvar", "loss_mw", "pv_p_mw",
                                                           "pv_avail_mw", "mt_p_mw")}
    rep = FeederReport(feeder_id="dso1", cost_usd={"loss": 1.0}, soc_gap_mva2=1e-9, ev_unmet_mwh=0.0,
                       ac_max_voltage_error_pu=1e-10, ac_loss_error_rel=1e-9, ac_checked=True, ac_converged=True,
                       chance={"joint_reliability_mc": 0.97, "reserve_up_mw": 0.8}, **node, **per)
    got = convert.dso_report_from_proto(convert.dso_report_to_proto(rep), FeederReport, "dso1")
    assert got.chance == rep.chance
    for k in (*node, *per):
        np.testing.assert_array_equal(getattr(got, k), getattr(rep, k))
    assert got.cost_usd == rep.cost_usd and got.ac_loss_error_rel == rep.ac_loss_error_rel
