"""The simulator's event trace: one JSON object per line with `t` (seconds), `event`, `id`,
the policy, event details, and the KV gauges at that instant."""

from __future__ import annotations

import enum
import json
from typing import Any, Protocol, TextIO

from llmserve.kv.block_manager import KVUsage


class TraceEvent(enum.Enum):
    """Event kinds. A step's decisions (admit, reject, preempt, swap_out, swap_in,
    schedule) are stamped with the step's start and the KV usage once it was scheduled;
    token and finish with the step's end and the usage after it."""

    ARRIVE = "arrive"  # the request reached the scheduler
    ADMIT = "admit"  # it passed admission control and was queued
    REJECT = "reject"  # admission control turned it away (`reason`, `detail`)
    SCHEDULE = "schedule"  # it is in this step's batch (`kind` prefill|decode, `tokens`)
    PREEMPT = "preempt"  # it lost its GPU KV (`mode` swap|recompute, `blocks`)
    SWAP_OUT = "swap_out"  # its blocks were copied to host (`blocks`)
    SWAP_IN = "swap_in"  # its blocks were copied back to the GPU (`blocks`)
    TOKEN = "token"  # it sampled a token (`n`: tokens generated so far)
    FINISH = "finish"  # it generated max_tokens tokens


class TraceSink(Protocol):
    def emit(
        self, t: float, event: TraceEvent, seq_id: str, kv: KVUsage, **fields: Any
    ) -> None: ...


class NullTrace:
    """Discards events (a run without --trace)."""

    def emit(self, t: float, event: TraceEvent, seq_id: str, kv: KVUsage, **fields: Any) -> None:
        return None


class TeeTrace:
    """Hands every event to each sink in turn (e.g. a trace file and the telemetry)."""

    def __init__(self, *sinks: TraceSink | None) -> None:
        self.sinks = tuple(s for s in sinks if s is not None)

    def emit(self, t: float, event: TraceEvent, seq_id: str, kv: KVUsage, **fields: Any) -> None:
        for sink in self.sinks:
            sink.emit(t, event, seq_id, kv, **fields)


def event_dict(
    t: float, event: TraceEvent, seq_id: str, kv: KVUsage, policy: str, fields: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {"t": round(t, 9), "event": event.value, "id": seq_id, "policy": policy}
    out.update(fields)
    out["kv_used"] = kv.gpu_blocks_used
    out["kv_total"] = kv.gpu_blocks_total
    out["kv_swapped"] = kv.host_blocks_used
    return out


class JsonlTrace:
    """Writes events as JSON lines to an open text stream, tagged with `policy`."""

    def __init__(self, stream: TextIO, policy: str) -> None:
        self.stream = stream
        self.policy = policy
        self._dumps = json.JSONEncoder(separators=(",", ":")).encode

    def emit(self, t: float, event: TraceEvent, seq_id: str, kv: KVUsage, **fields: Any) -> None:
        self.stream.write(self._dumps(event_dict(t, event, seq_id, kv, self.policy, fields)))
        self.stream.write("\n")


class ListTrace:
    """Keeps events as dicts in memory (tests, small runs)."""

    def __init__(self, policy: str = "") -> None:
        self.policy = policy
        self.events: list[dict[str, Any]] = []

    def emit(self, t: float, event: TraceEvent, seq_id: str, kv: KVUsage, **fields: Any) -> None:
        self.events.append(event_dict(t, event, seq_id, kv, self.policy, fields))
