from gridcoord.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StationPricesRequest(_message.Message):
    __slots__ = ("key", "n_stations", "n_periods", "price_usd_per_mwh", "mode", "max_iter", "gap_tol")
    KEY_FIELD_NUMBER: _ClassVar[int]
    N_STATIONS_FIELD_NUMBER: _ClassVar[int]
    N_PERIODS_FIELD_NUMBER: _ClassVar[int]
    PRICE_USD_PER_MWH_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MAX_ITER_FIELD_NUMBER: _ClassVar[int]
    GAP_TOL_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.RunKey
    n_stations: int
    n_periods: int
    price_usd_per_mwh: _containers.RepeatedScalarFieldContainer[float]
    mode: str
    max_iter: int
    gap_tol: float
    def __init__(self, key: _Optional[_Union[_common_pb2.RunKey, _Mapping]] = ..., n_stations: _Optional[int] = ..., n_periods: _Optional[int] = ..., price_usd_per_mwh: _Optional[_Iterable[float]] = ..., mode: _Optional[str] = ..., max_iter: _Optional[int] = ..., gap_tol: _Optional[float] = ...) -> None: ...

class StationArrivals(_message.Message):
    __slots__ = ("ev_id", "ev_type", "station", "plug_start_h", "plug_end_h", "need_kwh", "capacity_kwh", "soc_arrival_kwh", "p_charge_kw", "p_discharge_kw", "efficiency", "need_cut_kwh", "equilibrium_gap", "equilibrium_gap_charging", "iterations")
    EV_ID_FIELD_NUMBER: _ClassVar[int]
    EV_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATION_FIELD_NUMBER: _ClassVar[int]
    PLUG_START_H_FIELD_NUMBER: _ClassVar[int]
    PLUG_END_H_FIELD_NUMBER: _ClassVar[int]
    NEED_KWH_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_KWH_FIELD_NUMBER: _ClassVar[int]
    SOC_ARRIVAL_KWH_FIELD_NUMBER: _ClassVar[int]
    P_CHARGE_KW_FIELD_NUMBER: _ClassVar[int]
    P_DISCHARGE_KW_FIELD_NUMBER: _ClassVar[int]
    EFFICIENCY_FIELD_NUMBER: _ClassVar[int]
    NEED_CUT_KWH_FIELD_NUMBER: _ClassVar[int]
    EQUILIBRIUM_GAP_FIELD_NUMBER: _ClassVar[int]
    EQUILIBRIUM_GAP_CHARGING_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    ev_id: _containers.RepeatedScalarFieldContainer[str]
    ev_type: _containers.RepeatedScalarFieldContainer[str]
    station: _containers.RepeatedScalarFieldContainer[int]
    plug_start_h: _containers.RepeatedScalarFieldContainer[float]
    plug_end_h: _containers.RepeatedScalarFieldContainer[float]
    need_kwh: _containers.RepeatedScalarFieldContainer[float]
    capacity_kwh: _containers.RepeatedScalarFieldContainer[float]
    soc_arrival_kwh: _containers.RepeatedScalarFieldContainer[float]
    p_charge_kw: _containers.RepeatedScalarFieldContainer[float]
    p_discharge_kw: _containers.RepeatedScalarFieldContainer[float]
    efficiency: _containers.RepeatedScalarFieldContainer[float]
    need_cut_kwh: float
    equilibrium_gap: float
    equilibrium_gap_charging: float
    iterations: int
    def __init__(self, ev_id: _Optional[_Iterable[str]] = ..., ev_type: _Optional[_Iterable[str]] = ..., station: _Optional[_Iterable[int]] = ..., plug_start_h: _Optional[_Iterable[float]] = ..., plug_end_h: _Optional[_Iterable[float]] = ..., need_kwh: _Optional[_Iterable[float]] = ..., capacity_kwh: _Optional[_Iterable[float]] = ..., soc_arrival_kwh: _Optional[_Iterable[float]] = ..., p_charge_kw: _Optional[_Iterable[float]] = ..., p_discharge_kw: _Optional[_Iterable[float]] = ..., efficiency: _Optional[_Iterable[float]] = ..., need_cut_kwh: _Optional[float] = ..., equilibrium_gap: _Optional[float] = ..., equilibrium_gap_charging: _Optional[float] = ..., iterations: _Optional[int] = ...) -> None: ...
