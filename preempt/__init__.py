"""The runtime inside an application: XQueues, progressive launching, task latency, schedulers."""

from preempt.errors import (
    ConfigError,
    HwQueueFailed,
    PreemptError,
    XQueueClosedError,
    XQueueConfigError,
    XQueueTimeout,
)
from preempt.xqueue import (
    CommandState,
    EventKind,
    XCommand,
    XQueue,
    XQueueEvent,
    XQueueInfo,
    XQueueState,
)

__all__ = [
    "CommandState",
    "ConfigError",
    "EventKind",
    "HwQueueFailed",
    "PreemptError",
    "XCommand",
    "XQueue",
    "XQueueClosedError",
    "XQueueConfigError",
    "XQueueEvent",
    "XQueueInfo",
    "XQueueState",
    "XQueueTimeout",
]
