"""Immutable view records the console renders: what one XQueue, process, policy looks like.

Built by `xsched_tui.store` from control-API messages; widgets only read them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

KV_USED_GAUGE = "kv_blocks_used"
KV_TOTAL_GAUGE = "kv_blocks_total"


class QueueState(enum.Enum):
    """What the table shows in its state column: IDLE/READY from the agent, plus suspension."""

    IDLE = "idle"
    READY = "ready"
    SUSPENDED = "suspended"  # suspended by the policy
    HELD = "held"  # suspended by an operator (SuspendXQueue)


class LinkState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    SILENT = "daemon silent"  # the stream is open but even the heartbeats stopped
    DOWN = "daemon down"


@dataclass(frozen=True)
class Connection:
    """The console's link to xschedd; `reason` says why it is down or silent (else empty)."""

    state: LinkState
    target: str
    reason: str = ""
    attempt: int = 0


@dataclass(frozen=True)
class Latency:
    """Task-latency summary (ms) as the daemon keeps it; `kind` is "task" or "busy" spans."""

    count: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    kind: str = "busy"


@dataclass(frozen=True)
class XQueueRow:
    xqueue_id: int
    name: str
    pid: int
    process: str
    device: str
    level: int
    threshold: int
    batch_size: int
    state: QueueState
    pending: int
    in_flight: int
    submitted: int
    completed: int
    priority: int
    hints: tuple[str, ...]
    latency: Latency
    ready_for_s: float
    share: float  # part of the daemon's share window it was ready and not suspended, [0, 1]

    @property
    def id_text(self) -> str:
        return f"{self.xqueue_id:#x}"


@dataclass(frozen=True)
class ProcessRow:
    pid: int
    uid: int
    name: str  # short name (first word of the command line)
    command: str
    nice: int
    xqueue_ids: tuple[int, ...]
    gauges: tuple[tuple[str, float], ...]
    connected_for_s: float

    def gauge(self, name: str) -> float | None:
        for key, value in self.gauges:
            if key == name:
                return value
        return None

    @property
    def kv_blocks(self) -> tuple[float, float] | None:
        """(used, total) KV blocks when the process reports both gauges, else None."""
        used, total = self.gauge(KV_USED_GAUGE), self.gauge(KV_TOTAL_GAUGE)
        if used is None or total is None or total <= 0:
            return None
        return used, total


@dataclass(frozen=True)
class PolicyRow:
    name: str = "-"
    gang: bool = False
    available: tuple[str, ...] = ()
    decisions: int = 0
    global_hints: tuple[str, ...] = ()  # timeslice, kdeadline


@dataclass(frozen=True)
class LatencyHistory:
    """Recent p50/p99 samples (ms) of one XQueue, oldest first."""

    xqueue_id: int
    p50_ms: tuple[float, ...]
    p99_ms: tuple[float, ...]


@dataclass(frozen=True)
class StatusChange:
    """What one or more applied updates changed; the UI refreshes only this."""

    reset: bool = False  # a snapshot replaced everything
    xqueues: frozenset[int] = frozenset()
    removed_xqueues: frozenset[int] = frozenset()
    processes: frozenset[int] = frozenset()
    removed_pids: frozenset[int] = frozenset()
    policy: bool = False

    def merge(self, other: StatusChange) -> StatusChange:
        if other.reset:
            return other
        return StatusChange(
            reset=self.reset,
            xqueues=(self.xqueues - other.removed_xqueues) | other.xqueues,
            removed_xqueues=(self.removed_xqueues - other.xqueues) | other.removed_xqueues,
            processes=(self.processes - other.removed_pids) | other.processes,
            removed_pids=(self.removed_pids - other.processes) | other.removed_pids,
            policy=self.policy or other.policy,
        )

    def __bool__(self) -> bool:
        return bool(
            self.reset or self.xqueues or self.removed_xqueues or self.processes
            or self.removed_pids or self.policy
        )
