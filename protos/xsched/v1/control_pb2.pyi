from protos.xsched.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class XQueueView(_message.Message):
    __slots__ = ("info", "held", "busy", "task", "ready_for_s", "priority", "share")
    INFO_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    BUSY_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    READY_FOR_S_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    info: _types_pb2.XQueueInfo
    held: bool
    busy: _types_pb2.LatencySummary
    task: _types_pb2.LatencySummary
    ready_for_s: float
    priority: int
    share: float
    def __init__(self, info: _Optional[_Union[_types_pb2.XQueueInfo, _Mapping]] = ..., held: _Optional[bool] = ..., busy: _Optional[_Union[_types_pb2.LatencySummary, _Mapping]] = ..., task: _Optional[_Union[_types_pb2.LatencySummary, _Mapping]] = ..., ready_for_s: _Optional[float] = ..., priority: _Optional[int] = ..., share: _Optional[float] = ...) -> None: ...

class ProcessView(_message.Message):
    __slots__ = ("pid", "uid", "name", "nice", "xqueue_ids", "gauges", "connected_for_s")
    class GaugesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    PID_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NICE_FIELD_NUMBER: _ClassVar[int]
    XQUEUE_IDS_FIELD_NUMBER: _ClassVar[int]
    GAUGES_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FOR_S_FIELD_NUMBER: _ClassVar[int]
    pid: int
    uid: int
    name: str
    nice: int
    xqueue_ids: _containers.RepeatedScalarFieldContainer[int]
    gauges: _containers.ScalarMap[str, float]
    connected_for_s: float
    def __init__(self, pid: _Optional[int] = ..., uid: _Optional[int] = ..., name: _Optional[str] = ..., nice: _Optional[int] = ..., xqueue_ids: _Optional[_Iterable[int]] = ..., gauges: _Optional[_Mapping[str, float]] = ..., connected_for_s: _Optional[float] = ...) -> None: ...

class ListXQueuesRequest(_message.Message):
    __slots__ = ("pid",)
    PID_FIELD_NUMBER: _ClassVar[int]
    pid: int
    def __init__(self, pid: _Optional[int] = ...) -> None: ...

class ListXQueuesResponse(_message.Message):
    __slots__ = ("xqueues",)
    XQUEUES_FIELD_NUMBER: _ClassVar[int]
    xqueues: _containers.RepeatedCompositeFieldContainer[XQueueView]
    def __init__(self, xqueues: _Optional[_Iterable[_Union[XQueueView, _Mapping]]] = ...) -> None: ...

class ListProcessesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProcessesResponse(_message.Message):
    __slots__ = ("processes",)
    PROCESSES_FIELD_NUMBER: _ClassVar[int]
    processes: _containers.RepeatedCompositeFieldContainer[ProcessView]
    def __init__(self, processes: _Optional[_Iterable[_Union[ProcessView, _Mapping]]] = ...) -> None: ...

class WatchStatusRequest(_message.Message):
    __slots__ = ("min_interval_ms", "heartbeat_ms")
    MIN_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    min_interval_ms: int
    heartbeat_ms: int
    def __init__(self, min_interval_ms: _Optional[int] = ..., heartbeat_ms: _Optional[int] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("policy", "processes", "xqueues", "heartbeat_ms", "share_window_s")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    PROCESSES_FIELD_NUMBER: _ClassVar[int]
    XQUEUES_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    SHARE_WINDOW_S_FIELD_NUMBER: _ClassVar[int]
    policy: PolicyInfo
    processes: _containers.RepeatedCompositeFieldContainer[ProcessView]
    xqueues: _containers.RepeatedCompositeFieldContainer[XQueueView]
    heartbeat_ms: int
    share_window_s: float
    def __init__(self, policy: _Optional[_Union[PolicyInfo, _Mapping]] = ..., processes: _Optional[_Iterable[_Union[ProcessView, _Mapping]]] = ..., xqueues: _Optional[_Iterable[_Union[XQueueView, _Mapping]]] = ..., heartbeat_ms: _Optional[int] = ..., share_window_s: _Optional[float] = ...) -> None: ...

class Delta(_message.Message):
    __slots__ = ("changed_xqueues", "removed_xqueues", "changed_processes", "removed_pids", "policy")
    CHANGED_XQUEUES_FIELD_NUMBER: _ClassVar[int]
    REMOVED_XQUEUES_FIELD_NUMBER: _ClassVar[int]
    CHANGED_PROCESSES_FIELD_NUMBER: _ClassVar[int]
    REMOVED_PIDS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    changed_xqueues: _containers.RepeatedCompositeFieldContainer[XQueueView]
    removed_xqueues: _containers.RepeatedScalarFieldContainer[int]
    changed_processes: _containers.RepeatedCompositeFieldContainer[ProcessView]
    removed_pids: _containers.RepeatedScalarFieldContainer[int]
    policy: PolicyInfo
    def __init__(self, changed_xqueues: _Optional[_Iterable[_Union[XQueueView, _Mapping]]] = ..., removed_xqueues: _Optional[_Iterable[int]] = ..., changed_processes: _Optional[_Iterable[_Union[ProcessView, _Mapping]]] = ..., removed_pids: _Optional[_Iterable[int]] = ..., policy: _Optional[_Union[PolicyInfo, _Mapping]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatusUpdate(_message.Message):
    __slots__ = ("snapshot", "delta", "heartbeat")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    snapshot: Snapshot
    delta: Delta
    heartbeat: Heartbeat
    def __init__(self, snapshot: _Optional[_Union[Snapshot, _Mapping]] = ..., delta: _Optional[_Union[Delta, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class PolicyInfo(_message.Message):
    __slots__ = ("name", "gang", "available", "decisions", "hints")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GANG_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    HINTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    gang: bool
    available: _containers.RepeatedScalarFieldContainer[str]
    decisions: int
    hints: _containers.RepeatedCompositeFieldContainer[_types_pb2.Hint]
    def __init__(self, name: _Optional[str] = ..., gang: _Optional[bool] = ..., available: _Optional[_Iterable[str]] = ..., decisions: _Optional[int] = ..., hints: _Optional[_Iterable[_Union[_types_pb2.Hint, _Mapping]]] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetPolicyRequest(_message.Message):
    __slots__ = ("name", "gang")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GANG_FIELD_NUMBER: _ClassVar[int]
    name: str
    gang: bool
    def __init__(self, name: _Optional[str] = ..., gang: _Optional[bool] = ...) -> None: ...

class SendHintRequest(_message.Message):
    __slots__ = ("hint", "pid")
    HINT_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    hint: _types_pb2.Hint
    pid: int
    def __init__(self, hint: _Optional[_Union[_types_pb2.Hint, _Mapping]] = ..., pid: _Optional[int] = ...) -> None: ...

class SendHintResponse(_message.Message):
    __slots__ = ("xqueue_ids",)
    XQUEUE_IDS_FIELD_NUMBER: _ClassVar[int]
    xqueue_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, xqueue_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class ConfigXQueueRequest(_message.Message):
    __slots__ = ("xqueue_id", "config")
    XQUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    xqueue_id: int
    config: _types_pb2.XQueueConfig
    def __init__(self, xqueue_id: _Optional[int] = ..., config: _Optional[_Union[_types_pb2.XQueueConfig, _Mapping]] = ...) -> None: ...

class XQueueRequest(_message.Message):
    __slots__ = ("xqueue_id",)
    XQUEUE_ID_FIELD_NUMBER: _ClassVar[int]
    xqueue_id: int
    def __init__(self, xqueue_id: _Optional[int] = ...) -> None: ...
