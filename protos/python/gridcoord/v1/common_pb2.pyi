from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunKey(_message.Message):
    __slots__ = ("run_id", "round")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    round: int
    def __init__(self, run_id: _Optional[str] = ..., round: _Optional[int] = ...) -> None: ...

class IcnnWeights(_message.Message):
    __slots__ = ("n_inputs", "n_hidden", "w", "b", "v", "a", "c")
    N_INPUTS_FIELD_NUMBER: _ClassVar[int]
    N_HIDDEN_FIELD_NUMBER: _ClassVar[int]
    W_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    V_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    C_FIELD_NUMBER: _ClassVar[int]
    n_inputs: int
    n_hidden: int
    w: _containers.RepeatedScalarFieldContainer[float]
    b: _containers.RepeatedScalarFieldContainer[float]
    v: _containers.RepeatedScalarFieldContainer[float]
    a: _containers.RepeatedScalarFieldContainer[float]
    c: float
    def __init__(self, n_inputs: _Optional[int] = ..., n_hidden: _Optional[int] = ..., w: _Optional[_Iterable[float]] = ..., b: _Optional[_Iterable[float]] = ..., v: _Optional[_Iterable[float]] = ..., a: _Optional[_Iterable[float]] = ..., c: _Optional[float] = ...) -> None: ...

class SurrogateTerm(_message.Message):
    __slots__ = ("operator_id", "index", "weights")
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    index: _containers.RepeatedScalarFieldContainer[int]
    weights: IcnnWeights
    def __init__(self, operator_id: _Optional[str] = ..., index: _Optional[_Iterable[int]] = ..., weights: _Optional[_Union[IcnnWeights, _Mapping]] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("key", "boundary_mw")
    KEY_FIELD_NUMBER: _ClassVar[int]
    BOUNDARY_MW_FIELD_NUMBER: _ClassVar[int]
    key: RunKey
    boundary_mw: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, key: _Optional[_Union[RunKey, _Mapping]] = ..., boundary_mw: _Optional[_Iterable[float]] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("cost_usd", "sensitivity_usd_per_mwh", "penalty_usd", "mismatch_mw", "dt_h", "hourly_cost_usd")
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    SENSITIVITY_USD_PER_MWH_FIELD_NUMBER: _ClassVar[int]
    PENALTY_USD_FIELD_NUMBER: _ClassVar[int]
    MISMATCH_MW_FIELD_NUMBER: _ClassVar[int]
    DT_H_FIELD_NUMBER: _ClassVar[int]
    HOURLY_COST_USD_FIELD_NUMBER: _ClassVar[int]
    cost_usd: float
    sensitivity_usd_per_mwh: _containers.RepeatedScalarFieldContainer[float]
    penalty_usd: float
    mismatch_mw: float
    dt_h: float
    hourly_cost_usd: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, cost_usd: _Optional[float] = ..., sensitivity_usd_per_mwh: _Optional[_Iterable[float]] = ..., penalty_usd: _Optional[float] = ..., mismatch_mw: _Optional[float] = ..., dt_h: _Optional[float] = ..., hourly_cost_usd: _Optional[_Iterable[float]] = ...) -> None: ...

class OptimizeRequest(_message.Message):
    __slots__ = ("key", "others", "center_mw", "move_mw")
    KEY_FIELD_NUMBER: _ClassVar[int]
    OTHERS_FIELD_NUMBER: _ClassVar[int]
    CENTER_MW_FIELD_NUMBER: _ClassVar[int]
    MOVE_MW_FIELD_NUMBER: _ClassVar[int]
    key: RunKey
    others: _containers.RepeatedCompositeFieldContainer[SurrogateTerm]
    center_mw: _containers.RepeatedScalarFieldContainer[float]
    move_mw: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, key: _Optional[_Union[RunKey, _Mapping]] = ..., others: _Optional[_Iterable[_Union[SurrogateTerm, _Mapping]]] = ..., center_mw: _Optional[_Iterable[float]] = ..., move_mw: _Optional[_Iterable[float]] = ...) -> None: ...

class OptimizeResponse(_message.Message):
    __slots__ = ("x_mw", "predicted_usd", "ok", "cost_usd", "sensitivity_usd_per_mwh")
    X_MW_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_USD_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    SENSITIVITY_USD_PER_MWH_FIELD_NUMBER: _ClassVar[int]
    x_mw: _containers.RepeatedScalarFieldContainer[float]
    predicted_usd: float
    ok: bool
    cost_usd: float
    sensitivity_usd_per_mwh: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, x_mw: _Optional[_Iterable[float]] = ..., predicted_usd: _Optional[float] = ..., ok: _Optional[bool] = ..., cost_usd: _Optional[float] = ..., sensitivity_usd_per_mwh: _Optional[_Iterable[float]] = ...) -> None: ...

class RespondRequest(_message.Message):
    __slots__ = ("key", "price_usd_per_mwh")
    KEY_FIELD_NUMBER: _ClassVar[int]
    PRICE_USD_PER_MWH_FIELD_NUMBER: _ClassVar[int]
    key: RunKey
    price_usd_per_mwh: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, key: _Optional[_Union[RunKey, _Mapping]] = ..., price_usd_per_mwh: _Optional[_Iterable[float]] = ...) -> None: ...

class ProxRequest(_message.Message):
    __slots__ = ("key", "target_mw", "rho_usd_per_mw2")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TARGET_MW_FIELD_NUMBER: _ClassVar[int]
    RHO_USD_PER_MW2_FIELD_NUMBER: _ClassVar[int]
    key: RunKey
    target_mw: _containers.RepeatedScalarFieldContainer[float]
    rho_usd_per_mw2: float
    def __init__(self, key: _Optional[_Union[RunKey, _Mapping]] = ..., target_mw: _Optional[_Iterable[float]] = ..., rho_usd_per_mw2: _Optional[float] = ...) -> None: ...

class BoundaryResponse(_message.Message):
    __slots__ = ("x_mw", "cost_usd")
    X_MW_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    x_mw: _containers.RepeatedScalarFieldContainer[float]
    cost_usd: float
    def __init__(self, x_mw: _Optional[_Iterable[float]] = ..., cost_usd: _Optional[float] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: RunKey
    def __init__(self, key: _Optional[_Union[RunKey, _Mapping]] = ...) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("operator_id", "role", "n_periods", "dt_h", "n_boundary", "dso_ids")
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    N_PERIODS_FIELD_NUMBER: _ClassVar[int]
    DT_H_FIELD_NUMBER: _ClassVar[int]
    N_BOUNDARY_FIELD_NUMBER: _ClassVar[int]
    DSO_IDS_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    role: str
    n_periods: int
    dt_h: float
    n_boundary: int
    dso_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, operator_id: _Optional[str] = ..., role: _Optional[str] = ..., n_periods: _Optional[int] = ..., dt_h: _Optional[float] = ..., n_boundary: _Optional[int] = ..., dso_ids: _Optional[_Iterable[str]] = ...) -> None: ...
