"""The bundled transport case of the power-transport coupling study: the Nguyen-Dupuis network with four
charging stations on an IEEE 33-bus feeder, 8 h at 5-minute steps, three EV types.

Stations (as in the paper: two near wind, one near PV, one without renewables): c1 on road node 12 at feeder
node 18 (wind), c2 on road node 13 at feeder node 33 (wind), c3 on road node 5 at feeder node 25 (PV), c4 on
road node 9 at feeder node 22 (none). Road nodes 5 and 9 are next to the origins 1 and 4, 12 and 13 are off
the main corridors. EV types (our assumptions, typical published figures): private car 60 kWh battery,
20 kWh need, 50 kW; ride-hailing 55 kWh, 30 kWh, 50 kW (stays only 1.3 x its shortest charging time); bus
300 kWh, 120 kWh, 120 kW. Half of the private cars are V2G-capable (30 % of the charging EVs).
"""

from __future__ import annotations

from dataclasses import replace

from tno.network import ChargingStation, EvType, TransportCase, nguyen_dupuis

#: the bundled transport case's name (``gridcoord serve tno --case``, ``gridcoord certs --case``)
CASE_NAME = "nguyen-dupuis-ieee33"
#: the case's one transport network operator: its operator id, certificate identity and DNS name
TNO_ID = "tno"

STATIONS = (
    ChargingStation("c1", road_node=12, feeder_node=18, plugs=20, p_plug_kw=120.0, renewable="wind"),
    ChargingStation("c2", road_node=13, feeder_node=33, plugs=20, p_plug_kw=120.0, renewable="wind"),
    ChargingStation("c3", road_node=5, feeder_node=25, plugs=20, p_plug_kw=120.0, renewable="pv"),
    ChargingStation("c4", road_node=9, feeder_node=22, plugs=20, p_plug_kw=120.0, renewable="none"),
)

EV_TYPES = (
    EvType("private_car", share=0.6, capacity_kwh=60.0, soc_arrival_kwh=15.0, need_kwh=20.0, p_charge_kw=50.0,
           efficiency=0.92, dwell_factor=1.5, value_of_time_usd_per_h=15.0, v2g_share=0.5),
    EvType("ride_hailing", share=0.3, capacity_kwh=55.0, soc_arrival_kwh=10.0, need_kwh=30.0, p_charge_kw=50.0,
           efficiency=0.92, dwell_factor=1.3, value_of_time_usd_per_h=25.0),
    EvType("bus", share=0.1, capacity_kwh=300.0, soc_arrival_kwh=80.0, need_kwh=120.0, p_charge_kw=120.0,
           efficiency=0.92, dwell_factor=1.5, value_of_time_usd_per_h=40.0),
)


def coupling_case(demand_scale: float = 1.0, charging_share: float = 0.1, horizon_min: float = 480.0,
                  departure_end_min: float = 330.0, seed: int = 1) -> TransportCase:
    """The study's transport case; reduced sizes for tests by ``demand_scale`` and a shorter horizon."""
    net, od = nguyen_dupuis(demand_scale)
    return TransportCase(network=net, od=od, stations=STATIONS, ev_types=EV_TYPES, horizon_min=horizon_min,
                         departure_end_min=departure_end_min, charging_share=charging_share, seed=seed)


def operators() -> list[tuple[str, str]]:
    """(role, operator id) of every operator of the transport case: the TNO (the feeder's DSO and the EV
    clusters run inside the orchestrator's loop, so only the TNO is a service of its own)."""
    return [("tno", TNO_ID)]


def with_stations(case: TransportCase, stations: tuple[ChargingStation, ...]) -> TransportCase:
    return replace(case, stations=stations)
