from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class XQueueState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    XQUEUE_STATE_UNSPECIFIED: _ClassVar[XQueueState]
    XQUEUE_STATE_IDLE: _ClassVar[XQueueState]
    XQUEUE_STATE_READY: _ClassVar[XQueueState]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_READY: _ClassVar[EventKind]
    EVENT_KIND_IDLE: _ClassVar[EventKind]
    EVENT_KIND_SUSPENDED: _ClassVar[EventKind]
    EVENT_KIND_RESUMED: _ClassVar[EventKind]
    EVENT_KIND_CONFIGURED: _ClassVar[EventKind]
    EVENT_KIND_TASK: _ClassVar[EventKind]
    EVENT_KIND_CLOSED: _ClassVar[EventKind]
XQUEUE_STATE_UNSPECIFIED: XQueueState
XQUEUE_STATE_IDLE: XQueueState
XQUEUE_STATE_READY: XQueueState
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_READY: EventKind
EVENT_KIND_IDLE: EventKind
EVENT_KIND_SUSPENDED: EventKind
EVENT_KIND_RESUMED: EventKind
EVENT_KIND_CONFIGURED: EventKind
EVENT_KIND_TASK: EventKind
EVENT_KIND_CLOSED: EventKind

class XQueueInfo(_message.Message):
    __slots__ = ("xqueue_id", "name", "pid", "device", "state", "suspended", "level", "threshold", "batch_size", "pending", "in_flight", "submitted", "completed")
    XQUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SUSPENDED_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    xqueue_id: int
    name: str
    pid: int
    device: str
    state: XQueueState
    suspended: bool
    level: int
    threshold: int
    batch_size: int
    pending: int
    in_flight: int
    submitted: int
    completed: int
    def __init__(self, xqueue_id: _Optional[int] = ..., name: _Optional[str] = ..., pid: _Optional[int] = ..., device: _Optional[str] = ..., state: _Optional[_Union[XQueueState, str]] = ..., suspended: _Optional[bool] = ..., level: _Optional[int] = ..., threshold: _Optional[int] = ..., batch_size: _Optional[int] = ..., pending: _Optional[int] = ..., in_flight: _Optional[int] = ..., submitted: _Optional[int] = ..., completed: _Optional[int] = ...) -> None: ...

class PriorityHint(_message.Message):
    __slots__ = ("xqueue_id", "priority")
    XQUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    xqueue_id: int
    priority: int
    def __init__(self, xqueue_id: _Optional[int] = ..., priority: _Optional[int] = ...) -> None: ...

class UtilizationHint(_message.Message):
    __slots__ = ("xqueue_id", "utilization")
    XQUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    xqueue_id: int
    utilization: int
    def __init__(self, xqueue_id: _Optional[int] = ..., utilization: _Optional[int] = ...) -> None: ...

class ProcessUtilizationHint(_message.Message):
    __slots__ = ("pid", "utilization")
    PID_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    pid: int
    utilization: int
    def __init__(self, pid: _Optional[int] = ..., utilization: _Optional[int] = ...) -> None: ...

class TimesliceHint(_message.Message):
    __slots__ = ("timeslice_us",)
    TIMESLICE_US_FIELD_NUMBER: _ClassVar[int]
    timeslice_us: int
    def __init__(self, timeslice_us: _Optional[int] = ...) -> None: ...

class DeadlineHint(_message.Message):
    __slots__ = ("xqueue_id", "deadline_us")
    XQUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_US_FIELD_NUMBER: _ClassVar[int]
    xqueue_id: int
    deadline_us: int
    def __init__(self, xqueue_id: _Optional[int] = ..., deadline_us: _Optional[int] = ...) -> None: ...

class KDeadlineHint(_message.Message):
    __slots__ = ("k",)
    K_FIELD_NUMBER: _ClassVar[int]
    k: int
    def __init__(self, k: _Optional[int] = ...) -> None: ...

class LaxityHint(_message.Message):
    __slots__ = ("xqueue_id", "laxity_us", "lax_priority", "crit_priority")
    XQUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    LAXITY_US_FIELD_NUMBER: _ClassVar[int]
    LAX_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CRIT_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    xqueue_id: int
    laxity_us: int
    lax_priority: int
    crit_priority: int
    def __init__(self, xqueue_id: _Optional[int] = ..., laxity_us: _Optional[int] = ..., lax_priority: _Optional[int] = ..., crit_priority: _Optional[int] = ...) -> None: ...

class WindowActiveHint(_message.Message):
    __slots__ = ("pid", "active")
    PID_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    pid: int
    active: bool
    def __init__(self, pid: _Optional[int] = ..., active: _Optional[bool] = ...) -> None: ...

class Hint(_message.Message):
    __slots__ = ("priority", "utilization", "process_utilization", "timeslice", "deadline", "kdeadline", "laxity", "window_active")
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    PROCESS_UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    TIMESLICE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    KDEADLINE_FIELD_NUMBER: _ClassVar[int]
    LAXITY_FIELD_NUMBER: _ClassVar[int]
    WINDOW_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    priority: PriorityHint
    utilization: UtilizationHint
    process_utilization: ProcessUtilizationHint
    timeslice: TimesliceHint
    deadline: DeadlineHint
    kdeadline: KDeadlineHint
    laxity: LaxityHint
    window_active: WindowActiveHint
    def __init__(self, priority: _Optional[_Union[PriorityHint, _Mapping]] = ..., utilization: _Optional[_Union[UtilizationHint, _Mapping]] = ..., process_utilization: _Optional[_Union[ProcessUtilizationHint, _Mapping]] = ..., timeslice: _Optional[_Union[TimesliceHint, _Mapping]] = ..., deadline: _Optional[_Union[DeadlineHint, _Mapping]] = ..., kdeadline: _Optional[_Union[KDeadlineHint, _Mapping]] = ..., laxity: _Optional[_Union[LaxityHint, _Mapping]] = ..., window_active: _Optional[_Union[WindowActiveHint, _Mapping]] = ...) -> None: ...

class XQueueConfig(_message.Message):
    __slots__ = ("level", "threshold", "batch_size")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    level: int
    threshold: int
    batch_size: int
    def __init__(self, level: _Optional[int] = ..., threshold: _Optional[int] = ..., batch_size: _Optional[int] = ...) -> None: ...

class LatencySummary(_message.Message):
    __slots__ = ("count", "p50_ms", "p99_ms", "mean_ms")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    MEAN_MS_FIELD_NUMBER: _ClassVar[int]
    count: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    def __init__(self, count: _Optional[int] = ..., p50_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ..., mean_ms: _Optional[float] = ...) -> None: ...
