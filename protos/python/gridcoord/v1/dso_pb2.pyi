from gridcoord.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DsoRedispatchRequest(_message.Message):
    __slots__ = ("key", "t_from", "no_show", "late_arrival_h")
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
    key: _common_pb2.RunKey
    t_from: int
    no_show: _containers.RepeatedScalarFieldContainer[str]
    late_arrival_h: _containers.ScalarMap[str, float]
    def __init__(self, key: _Optional[_Union[_common_pb2.RunKey, _Mapping]] = ..., t_from: _Optional[int] = ..., no_show: _Optional[_Iterable[str]] = ..., late_arrival_h: _Optional[_Mapping[str, float]] = ...) -> None: ...

class DsoDispatchRequest(_message.Message):
    __slots__ = ("key", "scenario")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.RunKey
    scenario: str
    def __init__(self, key: _Optional[_Union[_common_pb2.RunKey, _Mapping]] = ..., scenario: _Optional[str] = ...) -> None: ...

class DsoDispatchResponse(_message.Message):
    __slots__ = ("report", "scenario", "station_ids", "station_p_mw", "station_q_mvar", "pv_q_mvar", "wind_q_mvar", "n_pv", "n_wind", "objective", "solve_s", "ev_ids", "ev_unmet_kwh", "day_ahead_objective", "late_shortfall_kwh", "t_from")
    REPORT_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    STATION_IDS_FIELD_NUMBER: _ClassVar[int]
    STATION_P_MW_FIELD_NUMBER: _ClassVar[int]
    STATION_Q_MVAR_FIELD_NUMBER: _ClassVar[int]
    PV_Q_MVAR_FIELD_NUMBER: _ClassVar[int]
    WIND_Q_MVAR_FIELD_NUMBER: _ClassVar[int]
    N_PV_FIELD_NUMBER: _ClassVar[int]
    N_WIND_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    SOLVE_S_FIELD_NUMBER: _ClassVar[int]
    EV_IDS_FIELD_NUMBER: _ClassVar[int]
    EV_UNMET_KWH_FIELD_NUMBER: _ClassVar[int]
    DAY_AHEAD_OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    LATE_SHORTFALL_KWH_FIELD_NUMBER: _ClassVar[int]
    T_FROM_FIELD_NUMBER: _ClassVar[int]
    report: DsoReport
    scenario: str
    station_ids: _containers.RepeatedScalarFieldContainer[str]
    station_p_mw: _containers.RepeatedScalarFieldContainer[float]
    station_q_mvar: _containers.RepeatedScalarFieldContainer[float]
    pv_q_mvar: _containers.RepeatedScalarFieldContainer[float]
    wind_q_mvar: _containers.RepeatedScalarFieldContainer[float]
    n_pv: int
    n_wind: int
    objective: float
    solve_s: float
    ev_ids: _containers.RepeatedScalarFieldContainer[str]
    ev_unmet_kwh: _containers.RepeatedScalarFieldContainer[float]
    day_ahead_objective: float
    late_shortfall_kwh: float
    t_from: int
    def __init__(self, report: _Optional[_Union[DsoReport, _Mapping]] = ..., scenario: _Optional[str] = ..., station_ids: _Optional[_Iterable[str]] = ..., station_p_mw: _Optional[_Iterable[float]] = ..., station_q_mvar: _Optional[_Iterable[float]] = ..., pv_q_mvar: _Optional[_Iterable[float]] = ..., wind_q_mvar: _Optional[_Iterable[float]] = ..., n_pv: _Optional[int] = ..., n_wind: _Optional[int] = ..., objective: _Optional[float] = ..., solve_s: _Optional[float] = ..., ev_ids: _Optional[_Iterable[str]] = ..., ev_unmet_kwh: _Optional[_Iterable[float]] = ..., day_ahead_objective: _Optional[float] = ..., late_shortfall_kwh: _Optional[float] = ..., t_from: _Optional[int] = ...) -> None: ...

class ForecastRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.RunKey
    def __init__(self, key: _Optional[_Union[_common_pb2.RunKey, _Mapping]] = ...) -> None: ...

class ForecastResponse(_message.Message):
    __slots__ = ("p_import_mw", "dp_epsilon", "dp_delta", "dp_releases")
    P_IMPORT_MW_FIELD_NUMBER: _ClassVar[int]
    DP_EPSILON_FIELD_NUMBER: _ClassVar[int]
    DP_DELTA_FIELD_NUMBER: _ClassVar[int]
    DP_RELEASES_FIELD_NUMBER: _ClassVar[int]
    p_import_mw: _containers.RepeatedScalarFieldContainer[float]
    dp_epsilon: float
    dp_delta: float
    dp_releases: int
    def __init__(self, p_import_mw: _Optional[_Iterable[float]] = ..., dp_epsilon: _Optional[float] = ..., dp_delta: _Optional[float] = ..., dp_releases: _Optional[int] = ...) -> None: ...

class DsoReportRequest(_message.Message):
    __slots__ = ("key", "boundary_mw", "price_usd_per_mwh")
    KEY_FIELD_NUMBER: _ClassVar[int]
    BOUNDARY_MW_FIELD_NUMBER: _ClassVar[int]
    PRICE_USD_PER_MWH_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.RunKey
    boundary_mw: _containers.RepeatedScalarFieldContainer[float]
    price_usd_per_mwh: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, key: _Optional[_Union[_common_pb2.RunKey, _Mapping]] = ..., boundary_mw: _Optional[_Iterable[float]] = ..., price_usd_per_mwh: _Optional[_Iterable[float]] = ...) -> None: ...

class DsoReport(_message.Message):
    __slots__ = ("n_nodes", "n_periods", "p_import_mw", "q_import_mvar", "p_load_mw", "q_load_mvar", "p_gen_mw", "q_gen_mvar", "p_ev_mw", "v_pu", "loss_mw", "pv_p_mw", "pv_avail_mw", "mt_p_mw", "cost_usd", "soc_gap_mva2", "ev_unmet_mwh", "ac_max_voltage_error_pu", "ac_loss_error_rel", "ac_converged", "ac_checked", "wind_p_mw", "wind_avail_mw", "penalty_usd", "mismatch_mw", "q_ev_mvar", "chance")
    class CostUsdEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ChanceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    N_NODES_FIELD_NUMBER: _ClassVar[int]
    N_PERIODS_FIELD_NUMBER: _ClassVar[int]
    P_IMPORT_MW_FIELD_NUMBER: _ClassVar[int]
    Q_IMPORT_MVAR_FIELD_NUMBER: _ClassVar[int]
    P_LOAD_MW_FIELD_NUMBER: _ClassVar[int]
    Q_LOAD_MVAR_FIELD_NUMBER: _ClassVar[int]
    P_GEN_MW_FIELD_NUMBER: _ClassVar[int]
    Q_GEN_MVAR_FIELD_NUMBER: _ClassVar[int]
    P_EV_MW_FIELD_NUMBER: _ClassVar[int]
    V_PU_FIELD_NUMBER: _ClassVar[int]
    LOSS_MW_FIELD_NUMBER: _ClassVar[int]
    PV_P_MW_FIELD_NUMBER: _ClassVar[int]
    PV_AVAIL_MW_FIELD_NUMBER: _ClassVar[int]
    MT_P_MW_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    SOC_GAP_MVA2_FIELD_NUMBER: _ClassVar[int]
    EV_UNMET_MWH_FIELD_NUMBER: _ClassVar[int]
    AC_MAX_VOLTAGE_ERROR_PU_FIELD_NUMBER: _ClassVar[int]
    AC_LOSS_ERROR_REL_FIELD_NUMBER: _ClassVar[int]
    AC_CONVERGED_FIELD_NUMBER: _ClassVar[int]
    AC_CHECKED_FIELD_NUMBER: _ClassVar[int]
    WIND_P_MW_FIELD_NUMBER: _ClassVar[int]
    WIND_AVAIL_MW_FIELD_NUMBER: _ClassVar[int]
    PENALTY_USD_FIELD_NUMBER: _ClassVar[int]
    MISMATCH_MW_FIELD_NUMBER: _ClassVar[int]
    Q_EV_MVAR_FIELD_NUMBER: _ClassVar[int]
    CHANCE_FIELD_NUMBER: _ClassVar[int]
    n_nodes: int
    n_periods: int
    p_import_mw: _containers.RepeatedScalarFieldContainer[float]
    q_import_mvar: _containers.RepeatedScalarFieldContainer[float]
    p_load_mw: _containers.RepeatedScalarFieldContainer[float]
    q_load_mvar: _containers.RepeatedScalarFieldContainer[float]
    p_gen_mw: _containers.RepeatedScalarFieldContainer[float]
    q_gen_mvar: _containers.RepeatedScalarFieldContainer[float]
    p_ev_mw: _containers.RepeatedScalarFieldContainer[float]
    v_pu: _containers.RepeatedScalarFieldContainer[float]
    loss_mw: _containers.RepeatedScalarFieldContainer[float]
    pv_p_mw: _containers.RepeatedScalarFieldContainer[float]
    pv_avail_mw: _containers.RepeatedScalarFieldContainer[float]
    mt_p_mw: _containers.RepeatedScalarFieldContainer[float]
    cost_usd: _containers.ScalarMap[str, float]
    soc_gap_mva2: float
    ev_unmet_mwh: float
    ac_max_voltage_error_pu: float
    ac_loss_error_rel: float
    ac_converged: bool
    ac_checked: bool
    wind_p_mw: _containers.RepeatedScalarFieldContainer[float]
    wind_avail_mw: _containers.RepeatedScalarFieldContainer[float]
    penalty_usd: float
    mismatch_mw: float
    q_ev_mvar: _containers.RepeatedScalarFieldContainer[float]
    chance: _containers.ScalarMap[str, float]
    def __init__(self, n_nodes: _Optional[int] = ..., n_periods: _Optional[int] = ..., p_import_mw: _Optional[_Iterable[float]] = ..., q_import_mvar: _Optional[_Iterable[float]] = ..., p_load_mw: _Optional[_Iterable[float]] = ..., q_load_mvar: _Optional[_Iterable[float]] = ..., p_gen_mw: _Optional[_Iterable[float]] = ..., q_gen_mvar: _Optional[_Iterable[float]] = ..., p_ev_mw: _Optional[_Iterable[float]] = ..., v_pu: _Optional[_Iterable[float]] = ..., loss_mw: _Optional[_Iterable[float]] = ..., pv_p_mw: _Optional[_Iterable[float]] = ..., pv_avail_mw: _Optional[_Iterable[float]] = ..., mt_p_mw: _Optional[_Iterable[float]] = ..., cost_usd: _Optional[_Mapping[str, float]] = ..., soc_gap_mva2: _Optional[float] = ..., ev_unmet_mwh: _Optional[float] = ..., ac_max_voltage_error_pu: _Optional[float] = ..., ac_loss_error_rel: _Optional[float] = ..., ac_converged: _Optional[bool] = ..., ac_checked: _Optional[bool] = ..., wind_p_mw: _Optional[_Iterable[float]] = ..., wind_avail_mw: _Optional[_Iterable[float]] = ..., penalty_usd: _Optional[float] = ..., mismatch_mw: _Optional[float] = ..., q_ev_mvar: _Optional[_Iterable[float]] = ..., chance: _Optional[_Mapping[str, float]] = ...) -> None: ...
