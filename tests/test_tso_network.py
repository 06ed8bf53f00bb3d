"""Extraction of transmission data from pandapower and its validation."""

import dataclasses
import warnings

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from tso.model import TsoInputs, build_tso_model
from tso.network import TransmissionDataError, ieee30, ieee118, transmission_from_pandapower


def dc_flows_pandapower(net) -> tuple[np.ndarray, np.ndarray]:
    """(bus injections MW, branch flows MW: lines then trafos) from pandapower's DC power flow."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcpp(net)
    flows = [net.res_line.p_from_mw.to_numpy()]
    if len(net.trafo):
        flows.append(net.res_trafo.p_hv_mw.to_numpy())
    return -net.res_bus.p_mw.to_numpy(), np.concatenate(flows)


def test_ieee30_arrays():
    d = ieee30(cost_scale=10.0)
    assert (d.n_bus, d.n_branch, d.n_gen) == (30, 41, 6)
    assert d.bus_labels[0] == 1 and d.bus_labels[-1] == 30 and d.ref_idx == 0
    assert d.load_p_mw.sum() == pytest.approx(189.2)
    assert d.gen_p_max_mw.sum() == pytest.approx(335.0)
    np.testing.assert_allclose([d.gen_c1_usd_per_mwh.min(), d.gen_c1_usd_per_mwh.max()], [10.0, 32.5])
    np.testing.assert_allclose(d.gen_ramp_mw_per_h, 0.3 * d.gen_p_max_mw)
    np.testing.assert_allclose([d.f_max_mw.min(), d.f_max_mw.max()], [16.0, 130.0], rtol=1e-6)
    # branch 0 is bus 1-2: r = 0.0192, x = 0.0575 p.u. in MATPOWER case30
    np.testing.assert_allclose([d.r_pu[0], d.x_pu[0]], [0.02, 0.06], rtol=1e-9)


@pytest.mark.parametrize("make", [pn.case30, pn.case118])
def test_ptdf_matches_pandapower_dc_flow(make):
    net = make()
    data = transmission_from_pandapower("x", make())
    p_inj, flows = dc_flows_pandapower(net)
    # case118's 161/138 kV transformers differ from pandapower's tap model by < 0.04 MW
    tol = 1e-6 if len(net.trafo) == 0 else 0.1
    np.testing.assert_allclose(data.ptdf() @ p_inj, flows, atol=tol)


def test_ieee118_has_transformers():
    d = ieee118()
    assert (d.n_bus, d.n_branch, d.n_gen) == (118, 186, 54)
    assert d.load_p_mw.sum() == pytest.approx(4242.0)


@pytest.mark.parametrize("bad", [0.0, -0.1, np.nan])
def test_bad_reactance_names_branch_and_value(bad):
    d = ieee30()
    x = d.x_pu.copy()
    x[3] = bad
    with pytest.raises(TransmissionDataError, match=rf"branch 3 \(bus 3-4\) has x_pu = {bad}"):
        dataclasses.replace(d, x_pu=x)


def test_bad_reactance_from_pandapower():
    net = pn.case30()
    net.line.loc[5, "x_ohm_per_km"] = np.nan
    with pytest.raises(TransmissionDataError, match=r"branch 5 \(bus 2-6\) has x_pu = nan"):
        transmission_from_pandapower("bad", net)


def test_disconnected_network():
    net = pn.case30()
    net.line.loc[net.line.to_bus == 25, "in_service"] = False  # bus 26 hangs on line 25-26 only
    with pytest.raises(TransmissionDataError, match="bus 26 is not connected"):
        transmission_from_pandapower("island", net)


def test_unknown_dso_bus():
    d = ieee30()
    inputs = TsoInputs(
        dt_h=1.0, load_p_mw=np.zeros((30, 2)), wind_bus_idx=np.zeros(0, dtype=int),
        wind_avail_mw=np.zeros((0, 2)), wind_curtail_usd_per_mwh=0.0, dr_max_mw=np.zeros((30, 2)),
        dr_cost_usd_per_mwh=100.0, dso_bus_idx=np.array([6, 30]),
    )
    with pytest.raises(TransmissionDataError, match=r"DSO 1 is at bus index 30, outside 0..29"):
        build_tso_model(d, inputs)


def test_inputs_shape_and_sign_errors():
    with pytest.raises(TransmissionDataError, match=r"dr_max_mw\[\(2, 1\)\] = -1.0 is negative"):
        dr = np.zeros((3, 2))
        dr[2, 1] = -1.0
        TsoInputs(dt_h=1.0, load_p_mw=np.zeros((3, 2)), wind_bus_idx=np.zeros(0, dtype=int),
                  wind_avail_mw=np.zeros((0, 2)), wind_curtail_usd_per_mwh=0.0, dr_max_mw=dr,
                  dr_cost_usd_per_mwh=1.0, dso_bus_idx=np.array([0]))
