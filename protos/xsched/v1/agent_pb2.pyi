from protos.xsched.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentMessage(_message.Message):
    __slots__ = ("register", "event", "report", "result")
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    register: Register
    event: XQueueEvent
    report: Report
    result: OperationResult
    def __init__(self, register: _Optional[_Union[Register, _Mapping]] = ..., event: _Optional[_Union[XQueueEvent, _Mapping]] = ..., report: _Optional[_Union[Report, _Mapping]] = ..., result: _Optional[_Union[OperationResult, _Mapping]] = ...) -> None: ...

class Register(_message.Message):
    __slots__ = ("pid", "name", "nice", "xqueues", "hints")
    PID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NICE_FIELD_NUMBER: _ClassVar[int]
    XQUEUES_FIELD_NUMBER: _ClassVar[int]
    HINTS_FIELD_NUMBER: _ClassVar[int]
    pid: int
    name: str
    nice: int
    xqueues: _containers.RepeatedCompositeFieldContainer[_types_pb2.XQueueInfo]
    hints: _containers.RepeatedCompositeFieldContainer[_types_pb2.Hint]
    def __init__(self, pid: _Optional[int] = ..., name: _Optional[str] = ..., nice: _Optional[int] = ..., xqueues: _Optional[_Iterable[_Union[_types_pb2.XQueueInfo, _Mapping]]] = ..., hints: _Optional[_Iterable[_Union[_types_pb2.Hint, _Mapping]]] = ...) -> None: ...

class XQueueEvent(_message.Message):
    __slots__ = ("kind", "info", "latency_s", "hints", "ready_for_us")
    KIND_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    LATENCY_S_FIELD_NUMBER: _ClassVar[int]
    HINTS_FIELD_NUMBER: _ClassVar[int]
    READY_FOR_US_FIELD_NUMBER: _ClassVar[int]
    kind: _types_pb2.EventKind
    info: _types_pb2.XQueueInfo
    latency_s: float
    hints: _containers.RepeatedCompositeFieldContainer[_types_pb2.Hint]
    ready_for_us: int
    def __init__(self, kind: _Optional[_Union[_types_pb2.EventKind, str]] = ..., info: _Optional[_Union[_types_pb2.XQueueInfo, _Mapping]] = ..., latency_s: _Optional[float] = ..., hints: _Optional[_Iterable[_Union[_types_pb2.Hint, _Mapping]]] = ..., ready_for_us: _Optional[int] = ...) -> None: ...

class LatencyBatch(_message.Message):
    __slots__ = ("xqueue_id", "busy_s", "task_s")
    XQUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    BUSY_S_FIELD_NUMBER: _ClassVar[int]
    TASK_S_FIELD_NUMBER: _ClassVar[int]
    xqueue_id: int
    busy_s: _containers.RepeatedScalarFieldContainer[float]
    task_s: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, xqueue_id: _Optional[int] = ..., busy_s: _Optional[_Iterable[float]] = ..., task_s: _Optional[_Iterable[float]] = ...) -> None: ...

class Report(_message.Message):
    __slots__ = ("latencies", "gauges", "nice")
    class GaugesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    LATENCIES_FIELD_NUMBER: _ClassVar[int]
    GAUGES_FIELD_NUMBER: _ClassVar[int]
    NICE_FIELD_NUMBER: _ClassVar[int]
    latencies: _containers.RepeatedCompositeFieldContainer[LatencyBatch]
    gauges: _containers.ScalarMap[str, float]
    nice: int
    def __init__(self, latencies: _Optional[_Iterable[_Union[LatencyBatch, _Mapping]]] = ..., gauges: _Optional[_Mapping[str, float]] = ..., nice: _Optional[int] = ...) -> None: ...

class OperationResult(_message.Message):
    __slots__ = ("op_id", "ok", "error")
    OP_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    op_id: int
    ok: bool
    error: str
    def __init__(self, op_id: _Optional[int] = ..., ok: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class DaemonMessage(_message.Message):
    __slots__ = ("registered", "operation", "ping", "shutdown", "operations", "error")
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    registered: Registered
    operation: Operation
    ping: Ping
    shutdown: Shutdown
    operations: Operations
    error: StreamError
    def __init__(self, registered: _Optional[_Union[Registered, _Mapping]] = ..., operation: _Optional[_Union[Operation, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., shutdown: _Optional[_Union[Shutdown, _Mapping]] = ..., operations: _Optional[_Union[Operations, _Mapping]] = ..., error: _Optional[_Union[StreamError, _Mapping]] = ...) -> None: ...

class StreamError(_message.Message):
    __slots__ = ("code", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: int
    details: str
    def __init__(self, code: _Optional[int] = ..., details: _Optional[str] = ...) -> None: ...

class Operations(_message.Message):
    __slots__ = ("ops",)
    OPS_FIELD_NUMBER: _ClassVar[int]
    ops: _containers.RepeatedCompositeFieldContainer[Operation]
    def __init__(self, ops: _Optional[_Iterable[_Union[Operation, _Mapping]]] = ...) -> None: ...

class Registered(_message.Message):
    __slots__ = ("lease_s", "policy", "gates")
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    GATES_FIELD_NUMBER: _ClassVar[int]
    lease_s: float
    policy: str
    gates: str
    def __init__(self, lease_s: _Optional[float] = ..., policy: _Optional[str] = ..., gates: _Optional[str] = ...) -> None: ...

class Operation(_message.Message):
    __slots__ = ("op_id", "xqueue_id", "suspend", "resume", "configure", "set_priority")
    OP_ID_FIELD_NUMBER: _ClassVar[int]
    XQUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    SUSPEND_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    CONFIGURE_FIELD_NUMBER: _ClassVar[int]
    SET_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    op_id: int
    xqueue_id: int
    suspend: Suspend
    resume: Resume
    configure: _types_pb2.XQueueConfig
    set_priority: SetPriority
    def __init__(self, op_id: _Optional[int] = ..., xqueue_id: _Optional[int] = ..., suspend: _Optional[_Union[Suspend, _Mapping]] = ..., resume: _Optional[_Union[Resume, _Mapping]] = ..., configure: _Optional[_Union[_types_pb2.XQueueConfig, _Mapping]] = ..., set_priority: _Optional[_Union[SetPriority, _Mapping]] = ...) -> None: ...

class Suspend(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Resume(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetPriority(_message.Message):
    __slots__ = ("priority",)
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    priority: int
    def __init__(self, priority: _Optional[int] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Shutdown(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...
