from gridcoord.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TouTariff(_message.Message):
    __slots__ = ("key", "level", "peak_usd_per_mwh", "flat_usd_per_mwh", "valley_usd_per_mwh")
    KEY_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    PEAK_USD_PER_MWH_FIELD_NUMBER: _ClassVar[int]
    FLAT_USD_PER_MWH_FIELD_NUMBER: _ClassVar[int]
    VALLEY_USD_PER_MWH_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.RunKey
    level: _containers.RepeatedScalarFieldContainer[str]
    peak_usd_per_mwh: float
    flat_usd_per_mwh: float
    valley_usd_per_mwh: float
    def __init__(self, key: _Optional[_Union[_common_pb2.RunKey, _Mapping]] = ..., level: _Optional[_Iterable[str]] = ..., peak_usd_per_mwh: _Optional[float] = ..., flat_usd_per_mwh: _Optional[float] = ..., valley_usd_per_mwh: _Optional[float] = ...) -> None: ...

class TariffAck(_message.Message):
    __slots__ = ("n_periods",)
    N_PERIODS_FIELD_NUMBER: _ClassVar[int]
    n_periods: int
    def __init__(self, n_periods: _Optional[int] = ...) -> None: ...

class EnvelopeRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.RunKey
    def __init__(self, key: _Optional[_Union[_common_pb2.RunKey, _Mapping]] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("n_periods", "dt_h", "node", "station_id", "start", "dwell", "p_ch_max_mw", "p_dis_max_mw", "e_min_mwh", "e_max_mwh", "eta_ch", "eta_dis", "alloc_group", "stations", "station_p_max_mw")
    N_PERIODS_FIELD_NUMBER: _ClassVar[int]
    DT_H_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    STATION_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    DWELL_FIELD_NUMBER: _ClassVar[int]
    P_CH_MAX_MW_FIELD_NUMBER: _ClassVar[int]
    P_DIS_MAX_MW_FIELD_NUMBER: _ClassVar[int]
    E_MIN_MWH_FIELD_NUMBER: _ClassVar[int]
    E_MAX_MWH_FIELD_NUMBER: _ClassVar[int]
    ETA_CH_FIELD_NUMBER: _ClassVar[int]
    ETA_DIS_FIELD_NUMBER: _ClassVar[int]
    ALLOC_GROUP_FIELD_NUMBER: _ClassVar[int]
    STATIONS_FIELD_NUMBER: _ClassVar[int]
    STATION_P_MAX_MW_FIELD_NUMBER: _ClassVar[int]
    n_periods: int
    dt_h: float
    node: _containers.RepeatedScalarFieldContainer[int]
    station_id: _containers.RepeatedScalarFieldContainer[str]
    start: _containers.RepeatedScalarFieldContainer[int]
    dwell: _containers.RepeatedScalarFieldContainer[int]
    p_ch_max_mw: _containers.RepeatedScalarFieldContainer[float]
    p_dis_max_mw: _containers.RepeatedScalarFieldContainer[float]
    e_min_mwh: _containers.RepeatedScalarFieldContainer[float]
    e_max_mwh: _containers.RepeatedScalarFieldContainer[float]
    eta_ch: _containers.RepeatedScalarFieldContainer[float]
    eta_dis: _containers.RepeatedScalarFieldContainer[float]
    alloc_group: _containers.RepeatedScalarFieldContainer[int]
    stations: _containers.RepeatedScalarFieldContainer[str]
    station_p_max_mw: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, n_periods: _Optional[int] = ..., dt_h: _Optional[float] = ..., node: _Optional[_Iterable[int]] = ..., station_id: _Optional[_Iterable[str]] = ..., start: _Optional[_Iterable[int]] = ..., dwell: _Optional[_Iterable[int]] = ..., p_ch_max_mw: _Optional[_Iterable[float]] = ..., p_dis_max_mw: _Optional[_Iterable[float]] = ..., e_min_mwh: _Optional[_Iterable[float]] = ..., e_max_mwh: _Optional[_Iterable[float]] = ..., eta_ch: _Optional[_Iterable[float]] = ..., eta_dis: _Optional[_Iterable[float]] = ..., alloc_group: _Optional[_Iterable[int]] = ..., stations: _Optional[_Iterable[str]] = ..., station_p_max_mw: _Optional[_Iterable[float]] = ...) -> None: ...

class DispatchRequest(_message.Message):
    __slots__ = ("key", "p_ch_mw", "p_dis_mw", "dlmp_usd_per_mwh", "alloc_share", "redispatched")
    KEY_FIELD_NUMBER: _ClassVar[int]
    P_CH_MW_FIELD_NUMBER: _ClassVar[int]
    P_DIS_MW_FIELD_NUMBER: _ClassVar[int]
    DLMP_USD_PER_MWH_FIELD_NUMBER: _ClassVar[int]
    ALLOC_SHARE_FIELD_NUMBER: _ClassVar[int]
    REDISPATCHED_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.RunKey
    p_ch_mw: _containers.RepeatedScalarFieldContainer[float]
    p_dis_mw: _containers.RepeatedScalarFieldContainer[float]
    dlmp_usd_per_mwh: _containers.RepeatedScalarFieldContainer[float]
    alloc_share: _containers.RepeatedScalarFieldContainer[float]
    redispatched: bool
    def __init__(self, key: _Optional[_Union[_common_pb2.RunKey, _Mapping]] = ..., p_ch_mw: _Optional[_Iterable[float]] = ..., p_dis_mw: _Optional[_Iterable[float]] = ..., dlmp_usd_per_mwh: _Optional[_Iterable[float]] = ..., alloc_share: _Optional[_Iterable[float]] = ..., redispatched: _Optional[bool] = ...) -> None: ...

class RebookRequest(_message.Message):
    __slots__ = ("key", "t_from", "no_show", "late_arrival_h", "p_ch_mw", "p_dis_mw")
    class LateArrivalHEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    T_FROM_FIELD_NUMBER: _ClassVar[int]
    NO_SHOW_FIELD_NUMBER: _ClassVar[int]
    LATE_ARRIVAL_H_FIELD_NUMBER: _ClassVar[int]
    P_CH_MW_FIELD_NUMBER: _ClassVar[int]
    P_DIS_MW_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.RunKey
    t_from: int
    no_show: _containers.RepeatedScalarFieldContainer[str]
    late_arrival_h: _containers.ScalarMap[str, float]
    p_ch_mw: _containers.RepeatedScalarFieldContainer[float]
    p_dis_mw: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, key: _Optional[_Union[_common_pb2.RunKey, _Mapping]] = ..., t_from: _Optional[int] = ..., no_show: _Optional[_Iterable[str]] = ..., late_arrival_h: _Optional[_Mapping[str, float]] = ..., p_ch_mw: _Optional[_Iterable[float]] = ..., p_dis_mw: _Optional[_Iterable[float]] = ...) -> None: ...

class Rebooking(_message.Message):
    __slots__ = ("envelope", "past_entry", "past_p_ch_mw", "past_p_dis_mw", "late_shortfall_kwh", "n_evs")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    PAST_ENTRY_FIELD_NUMBER: _ClassVar[int]
    PAST_P_CH_MW_FIELD_NUMBER: _ClassVar[int]
    PAST_P_DIS_MW_FIELD_NUMBER: _ClassVar[int]
    LATE_SHORTFALL_KWH_FIELD_NUMBER: _ClassVar[int]
    N_EVS_FIELD_NUMBER: _ClassVar[int]
    envelope: Envelope
    past_entry: _containers.RepeatedScalarFieldContainer[int]
    past_p_ch_mw: _containers.RepeatedScalarFieldContainer[float]
    past_p_dis_mw: _containers.RepeatedScalarFieldContainer[float]
    late_shortfall_kwh: float
    n_evs: int
    def __init__(self, envelope: _Optional[_Union[Envelope, _Mapping]] = ..., past_entry: _Optional[_Iterable[int]] = ..., past_p_ch_mw: _Optional[_Iterable[float]] = ..., past_p_dis_mw: _Optional[_Iterable[float]] = ..., late_shortfall_kwh: _Optional[float] = ..., n_evs: _Optional[int] = ...) -> None: ...

class DispatchResponse(_message.Message):
    __slots__ = ("n_evs", "unmet_mwh", "max_unmet_kwh", "station_p_mw", "evs", "outside_window_kwh")
    N_EVS_FIELD_NUMBER: _ClassVar[int]
    UNMET_MWH_FIELD_NUMBER: _ClassVar[int]
    MAX_UNMET_KWH_FIELD_NUMBER: _ClassVar[int]
    STATION_P_MW_FIELD_NUMBER: _ClassVar[int]
    EVS_FIELD_NUMBER: _ClassVar[int]
    OUTSIDE_WINDOW_KWH_FIELD_NUMBER: _ClassVar[int]
    n_evs: int
    unmet_mwh: float
    max_unmet_kwh: float
    station_p_mw: _containers.RepeatedScalarFieldContainer[float]
    evs: _containers.RepeatedCompositeFieldContainer[EvOutcome]
    outside_window_kwh: float
    def __init__(self, n_evs: _Optional[int] = ..., unmet_mwh: _Optional[float] = ..., max_unmet_kwh: _Optional[float] = ..., station_p_mw: _Optional[_Iterable[float]] = ..., evs: _Optional[_Iterable[_Union[EvOutcome, _Mapping]]] = ..., outside_window_kwh: _Optional[float] = ...) -> None: ...

class EvOutcome(_message.Message):
    __slots__ = ("ev_id", "station", "need_kwh", "delivered_kwh", "unmet_kwh")
    EV_ID_FIELD_NUMBER: _ClassVar[int]
    STATION_FIELD_NUMBER: _ClassVar[int]
    NEED_KWH_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_KWH_FIELD_NUMBER: _ClassVar[int]
    UNMET_KWH_FIELD_NUMBER: _ClassVar[int]
    ev_id: str
    station: str
    need_kwh: float
    delivered_kwh: float
    unmet_kwh: float
    def __init__(self, ev_id: _Optional[str] = ..., station: _Optional[str] = ..., need_kwh: _Optional[float] = ..., delivered_kwh: _Optional[float] = ..., unmet_kwh: _Optional[float] = ...) -> None: ...

class ReservationRequest(_message.Message):
    __slots__ = ("ev_id", "arrival_h", "departure_h", "energy_need_kwh", "capacity_kwh", "soc_arrival_kwh", "p_charge_kw", "p_discharge_kw", "efficiency", "station", "soc_min_kwh")
    EV_ID_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_H_FIELD_NUMBER: _ClassVar[int]
    DEPARTURE_H_FIELD_NUMBER: _ClassVar[int]
    ENERGY_NEED_KWH_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_KWH_FIELD_NUMBER: _ClassVar[int]
    SOC_ARRIVAL_KWH_FIELD_NUMBER: _ClassVar[int]
    P_CHARGE_KW_FIELD_NUMBER: _ClassVar[int]
    P_DISCHARGE_KW_FIELD_NUMBER: _ClassVar[int]
    EFFICIENCY_FIELD_NUMBER: _ClassVar[int]
    STATION_FIELD_NUMBER: _ClassVar[int]
    SOC_MIN_KWH_FIELD_NUMBER: _ClassVar[int]
    ev_id: str
    arrival_h: float
    departure_h: float
    energy_need_kwh: float
    capacity_kwh: float
    soc_arrival_kwh: float
    p_charge_kw: float
    p_discharge_kw: float
    efficiency: float
    station: str
    soc_min_kwh: float
    def __init__(self, ev_id: _Optional[str] = ..., arrival_h: _Optional[float] = ..., departure_h: _Optional[float] = ..., energy_need_kwh: _Optional[float] = ..., capacity_kwh: _Optional[float] = ..., soc_arrival_kwh: _Optional[float] = ..., p_charge_kw: _Optional[float] = ..., p_discharge_kw: _Optional[float] = ..., efficiency: _Optional[float] = ..., station: _Optional[str] = ..., soc_min_kwh: _Optional[float] = ...) -> None: ...

class ReservationResponse(_message.Message):
    __slots__ = ("accepted", "reason", "replay", "reason_code", "tou_level", "tou_price_usd_per_mwh", "booking")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    TOU_LEVEL_FIELD_NUMBER: _ClassVar[int]
    TOU_PRICE_USD_PER_MWH_FIELD_NUMBER: _ClassVar[int]
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    reason: str
    replay: bool
    reason_code: str
    tou_level: _containers.RepeatedScalarFieldContainer[str]
    tou_price_usd_per_mwh: _containers.RepeatedScalarFieldContainer[float]
    booking: str
    def __init__(self, accepted: _Optional[bool] = ..., reason: _Optional[str] = ..., replay: _Optional[bool] = ..., reason_code: _Optional[str] = ..., tou_level: _Optional[_Iterable[str]] = ..., tou_price_usd_per_mwh: _Optional[_Iterable[float]] = ..., booking: _Optional[str] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("ev_id", "booking")
    EV_ID_FIELD_NUMBER: _ClassVar[int]
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    ev_id: str
    booking: str
    def __init__(self, ev_id: _Optional[str] = ..., booking: _Optional[str] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("cancelled", "reason", "replay", "reason_code")
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    cancelled: bool
    reason: str
    replay: bool
    reason_code: str
    def __init__(self, cancelled: _Optional[bool] = ..., reason: _Optional[str] = ..., replay: _Optional[bool] = ..., reason_code: _Optional[str] = ...) -> None: ...

class ListReservationsRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.RunKey
    def __init__(self, key: _Optional[_Union[_common_pb2.RunKey, _Mapping]] = ...) -> None: ...

class ReservationList(_message.Message):
    __slots__ = ("evs", "closed", "preloaded")
    EVS_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    PRELOADED_FIELD_NUMBER: _ClassVar[int]
    evs: _containers.RepeatedCompositeFieldContainer[BookedEv]
    closed: bool
    preloaded: int
    def __init__(self, evs: _Optional[_Iterable[_Union[BookedEv, _Mapping]]] = ..., closed: _Optional[bool] = ..., preloaded: _Optional[int] = ...) -> None: ...

class BookedEv(_message.Message):
    __slots__ = ("ev_id", "station", "arrival_h", "departure_h", "energy_need_kwh")
    EV_ID_FIELD_NUMBER: _ClassVar[int]
    STATION_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_H_FIELD_NUMBER: _ClassVar[int]
    DEPARTURE_H_FIELD_NUMBER: _ClassVar[int]
    ENERGY_NEED_KWH_FIELD_NUMBER: _ClassVar[int]
    ev_id: str
    station: str
    arrival_h: float
    departure_h: float
    energy_need_kwh: float
    def __init__(self, ev_id: _Optional[str] = ..., station: _Optional[str] = ..., arrival_h: _Optional[float] = ..., departure_h: _Optional[float] = ..., energy_need_kwh: _Optional[float] = ...) -> None: ...
