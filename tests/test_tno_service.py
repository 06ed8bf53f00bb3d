"""The TNO behind gRPC: the same answers as in-process, bad requests refused naming the field, the loop over it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from core.rpc import RemoteError, start_server
from core.traffic import Traffic
from gridcoord.v1 import tno_pb2
from orchestrator.system.tno_client import RemoteTransportOperator
from tno.cases import coupling_case
from tno.network import TransportCase
from tno.operator import StationArrivals, TransportOperator
from tno.service import SERVICE_NAME, TnoServicer


def _case() -> TransportCase:
    return coupling_case(demand_scale=0.3, charging_share=0.2, horizon_min=120.0, departure_end_min=40.0)


@pytest.fixture()
def remote() -> Iterator[RemoteTransportOperator]:
    servicer = TnoServicer("tno-1", TransportOperator(_case()))
    served = start_server([servicer.register], [SERVICE_NAME], "127.0.0.1:0")
    served.set_serving(True)
    client = RemoteTransportOperator("tno-1", f"127.0.0.1:{served.port}", run_id="t1", stats=Traffic())
    client.wait(10.0)
    try:
        yield client
    finally:
        client.close()
        served.server.stop(0)


def _same(a: StationArrivals, b: StationArrivals) -> None:
    assert a.ev_id == b.ev_id and a.ev_type == b.ev_type
    np.testing.assert_array_equal(a.station, b.station)
    for f in ("plug_start_h", "plug_end_h", "need_kwh", "p_charge_kw", "p_discharge_kw", "efficiency"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert a.need_cut_kwh == b.need_cut_kwh


def test_remote_answers_as_embedded(remote: RemoteTransportOperator) -> None:
    case = _case()
    local = TransportOperator(case)
    price = np.full((len(case.stations), case.n_periods), 40.0)
    price[1] = -100.0  # cheap energy at c2
    for mode in ("shortest_path", "equilibrium"):
        want = local.respond(price, mode=mode, max_iter=5)
        got = remote.respond(price, mode=mode, max_iter=5)
        _same(got.arrivals, want.arrivals)
        assert got.gap == want.gap and got.iterations == want.iterations and got.assignment is None
    assert remote.stats is not None and remote.stats.messages == 4
    # only arrival envelopes cross: no route, origin or destination field exists on the wire
    assert not {"route", "origin", "destination"} & set(tno_pb2.StationArrivals.DESCRIPTOR.fields_by_name)


def test_remote_refuses_bad_prices(remote: RemoteTransportOperator) -> None:
    case = _case()
    with pytest.raises(RemoteError, match=r"this operator has 4 stations x 24 periods"):
        remote.respond(np.zeros((3, case.n_periods)))
    bad = np.zeros((4, case.n_periods))
    bad[2, 5] = np.nan
    with pytest.raises(RemoteError, match=r"price_usd_per_mwh"):
        remote.respond(bad)


def test_loop_over_the_service_matches_embedded(remote: RemoteTransportOperator) -> None:
    from aggregator.zonotope import shift_generators
    from dso.coupling import CouplingFeederSpec, coupling_feeder
    from dso.problem import DsoProblem
    from orchestrator.strategies.tno_dno import ZONOTOPE_SHIFTS, CouplingLoop

    case = _case()
    spec = CouplingFeederSpec()
    g = shift_generators(case.n_periods, ZONOTOPE_SHIFTS)
    results = []
    data, inputs = coupling_feeder(np.array([s.feeder_node for s in case.stations]), g, spec=spec)
    for tno in (TransportOperator(case), remote):
        loop = CouplingLoop(tno, DsoProblem(data, inputs), spec.import_price_usd_per_mwh, case.stations,
                            case.step_min, case.n_periods)
        results.append(loop.run("equilibrium", max_rounds=2, tno_max_iter=3))
    emb, srv = results
    assert [r.station_arrivals for r in emb.rounds] == [r.station_arrivals for r in srv.rounds]
    np.testing.assert_allclose(srv.price_usd_per_mwh, emb.price_usd_per_mwh, atol=1e-6)
    np.testing.assert_allclose(srv.dispatch.ev_zono_p_mw, emb.dispatch.ev_zono_p_mw, atol=1e-6)
    assert float(srv.ev_unmet_kwh.max()) <= 1e-6
