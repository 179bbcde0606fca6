"""Publishes a running engine's KV gauges and per-request TTFT / TPOT to xschedd, so that
the console (xsched-tui, xschedctl, the metrics endpoint) shows them.

The daemon keeps task latencies per XQueue, so each latency series is an XQueue of its
own: `<name>-ttft` and `<name>-tpot` hold no commands (they stay idle, and no policy has
anything to run or stop in them) and carry one task span per request through
`XQueue.record_task`, which the agent reports with its next report. The KV gauges go
through `Agent.set_gauge`. Without an agent (XSCHED_SCHEDULER other than GLB) there is
nothing to publish to, and `EngineTelemetry.attach` returns None.

Threads: `emit` runs on the engine's thread (it is a TraceSink of the engine loop);
`set_gauge` and `record_task` hand the values to the agent's thread without waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmserve.kv.block_manager import KVUsage
from llmserve.sim.trace import TraceEvent
from preempt.runtime import Runtime
from preempt.xqueue import XQueue

# Gauge names the console knows (xsched_tui.records reads the first two for its KV bars).
KV_USED_GAUGE = "kv_blocks_used"
KV_TOTAL_GAUGE = "kv_blocks_total"
KV_SWAPPED_GAUGE = "kv_blocks_swapped"


class EngineTelemetry:
    """A TraceSink that turns the engine's events into gauges and latency samples.

    TTFT is first token minus arrival, TPOT (time per output token after the first) is
    (finish - first token) / (tokens - 1), both on the engine's clock, as in the
    benchmark's per-request records; a request with one token has no TPOT.
    """

    def __init__(
        self, set_gauge: Callable[[str, float], None], ttft: XQueue, tpot: XQueue
    ) -> None:
        self._set_gauge = set_gauge
        self.ttft = ttft
        self.tpot = tpot
        self._arrival: dict[str, float] = {}
        self._first: dict[str, float] = {}
        self._tokens: dict[str, int] = {}
        self._gauges: tuple[int, int, int] | None = None

    @classmethod
    def attach(
        cls, runtime: Runtime, device: Any, name: str = "llmserve"
    ) -> EngineTelemetry | None:
        """Telemetry through `runtime`'s xschedd agent, with the two series XQueues on
        hardware queues of `device` (so the console lists them on the engine's device);
        None when the runtime has no agent."""
        set_gauge = getattr(runtime.scheduler, "set_gauge", None)  # only the GLB agent has it
        if set_gauge is None:
            return None
        ttft = runtime.create_xqueue(device.create_queue(), name=f"{name}-ttft")
        tpot = runtime.create_xqueue(device.create_queue(), name=f"{name}-tpot")
        return cls(set_gauge, ttft, tpot)

    def emit(self, t: float, event: TraceEvent, seq_id: str, kv: KVUsage, **fields: Any) -> None:
        self._publish_kv(kv)
        if event is TraceEvent.ARRIVE:
            self._arrival[seq_id] = t
        elif event is TraceEvent.TOKEN:
            self._tokens[seq_id] = fields.get("n", self._tokens.get(seq_id, 0) + 1)
            if seq_id not in self._first:
                self._first[seq_id] = t
                arrival = self._arrival.get(seq_id)
                if arrival is not None:
                    self.ttft.record_task(max(0.0, t - arrival))
        elif event is TraceEvent.FINISH:
            first = self._first.pop(seq_id, None)
            tokens = self._tokens.pop(seq_id, 0)
            self._arrival.pop(seq_id, None)
            if first is not None and tokens >= 2:
                self.tpot.record_task(max(0.0, t - first) / (tokens - 1))
        elif event is TraceEvent.REJECT:
            for book in (self._arrival, self._first, self._tokens):
                book.pop(seq_id, None)

    def _publish_kv(self, kv: KVUsage) -> None:
        values = (kv.gpu_blocks_used, kv.gpu_blocks_total, kv.host_blocks_used)
        if values == self._gauges:
            return
        self._gauges = values
        self._set_gauge(KV_USED_GAUGE, float(values[0]))
        self._set_gauge(KV_TOTAL_GAUGE, float(values[1]))
        self._set_gauge(KV_SWAPPED_GAUGE, float(values[2]))

    def close(self) -> None:
        """Close the series XQueues (the daemon forgets them) and their hardware queues."""
        for xq in (self.ttft, self.tpot):
            xq.close()
            xq.hwq.close()
