from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Status(_message.Message):
    __slots__ = ("did", "state", "reason", "participants", "intervals_cleared", "state_root", "device_faults")
    DID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    INTERVALS_CLEARED_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FAULTS_FIELD_NUMBER: _ClassVar[int]
    did: str
    state: str
    reason: str
    participants: _containers.RepeatedScalarFieldContainer[str]
    intervals_cleared: int
    state_root: str
    device_faults: int
    def __init__(self, did: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., participants: _Optional[_Iterable[str]] = ..., intervals_cleared: _Optional[int] = ..., state_root: _Optional[str] = ..., device_faults: _Optional[int] = ...) -> None: ...

class ReadingsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Reading(_message.Message):
    __slots__ = ("device", "participant", "role", "power_w", "import_wh", "export_wh", "soc_frac", "error")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    POWER_W_FIELD_NUMBER: _ClassVar[int]
    IMPORT_WH_FIELD_NUMBER: _ClassVar[int]
    EXPORT_WH_FIELD_NUMBER: _ClassVar[int]
    SOC_FRAC_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    device: str
    participant: str
    role: str
    power_w: float
    import_wh: int
    export_wh: int
    soc_frac: float
    error: str
    def __init__(self, device: _Optional[str] = ..., participant: _Optional[str] = ..., role: _Optional[str] = ..., power_w: _Optional[float] = ..., import_wh: _Optional[int] = ..., export_wh: _Optional[int] = ..., soc_frac: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class Readings(_message.Message):
    __slots__ = ("readings",)
    READINGS_FIELD_NUMBER: _ClassVar[int]
    readings: _containers.RepeatedCompositeFieldContainer[Reading]
    def __init__(self, readings: _Optional[_Iterable[_Union[Reading, _Mapping]]] = ...) -> None: ...

class DecisionsRequest(_message.Message):
    __slots__ = ("interval",)
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    interval: int
    def __init__(self, interval: _Optional[int] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("participant", "battery_kw", "ev_kw", "shift_kw", "bid_eur_per_kwh", "ask_eur_per_kwh", "trades")
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    BATTERY_KW_FIELD_NUMBER: _ClassVar[int]
    EV_KW_FIELD_NUMBER: _ClassVar[int]
    SHIFT_KW_FIELD_NUMBER: _ClassVar[int]
    BID_EUR_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    ASK_EUR_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    participant: str
    battery_kw: float
    ev_kw: float
    shift_kw: float
    bid_eur_per_kwh: float
    ask_eur_per_kwh: float
    trades: bool
    def __init__(self, participant: _Optional[str] = ..., battery_kw: _Optional[float] = ..., ev_kw: _Optional[float] = ..., shift_kw: _Optional[float] = ..., bid_eur_per_kwh: _Optional[float] = ..., ask_eur_per_kwh: _Optional[float] = ..., trades: _Optional[bool] = ...) -> None: ...

class Decisions(_message.Message):
    __slots__ = ("interval", "decisions")
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    interval: int
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    def __init__(self, interval: _Optional[int] = ..., decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ...) -> None: ...

class SettlementsRequest(_message.Message):
    __slots__ = ("participant",)
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    participant: str
    def __init__(self, participant: _Optional[str] = ...) -> None: ...

class Settlement(_message.Message):
    __slots__ = ("height", "time", "metered_wh", "bill_micro")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    METERED_WH_FIELD_NUMBER: _ClassVar[int]
    BILL_MICRO_FIELD_NUMBER: _ClassVar[int]
    height: int
    time: str
    metered_wh: int
    bill_micro: int
    def __init__(self, height: _Optional[int] = ..., time: _Optional[str] = ..., metered_wh: _Optional[int] = ..., bill_micro: _Optional[int] = ...) -> None: ...

class Settlements(_message.Message):
    __slots__ = ("participant", "settlements")
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENTS_FIELD_NUMBER: _ClassVar[int]
    participant: str
    settlements: _containers.RepeatedCompositeFieldContainer[Settlement]
    def __init__(self, participant: _Optional[str] = ..., settlements: _Optional[_Iterable[_Union[Settlement, _Mapping]]] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IntervalCleared(_message.Message):
    __slots__ = ("interval", "state_root", "price_eur_per_kwh")
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    PRICE_EUR_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    interval: int
    state_root: str
    price_eur_per_kwh: float
    def __init__(self, interval: _Optional[int] = ..., state_root: _Optional[str] = ..., price_eur_per_kwh: _Optional[float] = ...) -> None: ...
