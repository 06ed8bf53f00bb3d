from gridcoord.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DsoPoints(_message.Message):
    __slots__ = ("n_points", "points_mw", "costs_usd")
    N_POINTS_FIELD_NUMBER: _ClassVar[int]
    POINTS_MW_FIELD_NUMBER: _ClassVar[int]
    COSTS_USD_FIELD_NUMBER: _ClassVar[int]
    n_points: int
    points_mw: _containers.RepeatedScalarFieldContainer[float]
    costs_usd: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, n_points: _Optional[int] = ..., points_mw: _Optional[_Iterable[float]] = ..., costs_usd: _Optional[_Iterable[float]] = ...) -> None: ...

class MergeRequest(_message.Message):
    __slots__ = ("key", "dsos")
    KEY_FIELD_NUMBER: _ClassVar[int]
    DSOS_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.RunKey
    dsos: _containers.RepeatedCompositeFieldContainer[DsoPoints]
    def __init__(self, key: _Optional[_Union[_common_pb2.RunKey, _Mapping]] = ..., dsos: _Optional[_Iterable[_Union[DsoPoints, _Mapping]]] = ...) -> None: ...

class MergeResponse(_message.Message):
    __slots__ = ("x_mw", "theta", "bound_usd", "evaluation")
    X_MW_FIELD_NUMBER: _ClassVar[int]
    THETA_FIELD_NUMBER: _ClassVar[int]
    BOUND_USD_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    x_mw: _containers.RepeatedScalarFieldContainer[float]
    theta: _containers.RepeatedScalarFieldContainer[float]
    bound_usd: float
    evaluation: _common_pb2.EvaluateResponse
    def __init__(self, x_mw: _Optional[_Iterable[float]] = ..., theta: _Optional[_Iterable[float]] = ..., bound_usd: _Optional[float] = ..., evaluation: _Optional[_Union[_common_pb2.EvaluateResponse, _Mapping]] = ...) -> None: ...

class TsoReportRequest(_message.Message):
    __slots__ = ("key", "boundary_mw")
    KEY_FIELD_NUMBER: _ClassVar[int]
    BOUNDARY_MW_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.RunKey
    boundary_mw: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, key: _Optional[_Union[_common_pb2.RunKey, _Mapping]] = ..., boundary_mw: _Optional[_Iterable[float]] = ...) -> None: ...

class TsoReport(_message.Message):
    __slots__ = ("n_periods", "price_dso_usd_per_mwh", "cost_usd", "transmission_loss_mwh", "wind_p_mw", "wind_avail_mw", "penalty_usd", "mismatch_mw")
    class CostUsdEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    N_PERIODS_FIELD_NUMBER: _ClassVar[int]
    PRICE_DSO_USD_PER_MWH_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    TRANSMISSION_LOSS_MWH_FIELD_NUMBER: _ClassVar[int]
    WIND_P_MW_FIELD_NUMBER: _ClassVar[int]
    WIND_AVAIL_MW_FIELD_NUMBER: _ClassVar[int]
    PENALTY_USD_FIELD_NUMBER: _ClassVar[int]
    MISMATCH_MW_FIELD_NUMBER: _ClassVar[int]
    n_periods: int
    price_dso_usd_per_mwh: _containers.RepeatedScalarFieldContainer[float]
    cost_usd: _containers.ScalarMap[str, float]
    transmission_loss_mwh: float
    wind_p_mw: _containers.RepeatedScalarFieldContainer[float]
    wind_avail_mw: _containers.RepeatedScalarFieldContainer[float]
    penalty_usd: float
    mismatch_mw: float
    def __init__(self, n_periods: _Optional[int] = ..., price_dso_usd_per_mwh: _Optional[_Iterable[float]] = ..., cost_usd: _Optional[_Mapping[str, float]] = ..., transmission_loss_mwh: _Optional[float] = ..., wind_p_mw: _Optional[_Iterable[float]] = ..., wind_avail_mw: _Optional[_Iterable[float]] = ..., penalty_usd: _Optional[float] = ..., mismatch_mw: _Optional[float] = ...) -> None: ...
