"""Prometheus metrics of the daemon: XQueue states, task latencies, gauges, decisions.

Each daemon has its own CollectorRegistry (no process-global state), served over HTTP
on --metrics-port by prometheus-client's own thread. Updated from the event loop only.
"""

from __future__ import annotations

import contextlib
from collections import Counter as _Tally
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:
    from xschedd.status import ProcessRecord, XQueueRecord

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def _labels(rec: XQueueRecord) -> tuple[str, str, str]:
    return (f"{rec.xqueue_id:#x}", rec.info.name, str(rec.pid))


class Metrics:
    def __init__(self, port: int | None, host: str = "127.0.0.1") -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._xqueues = Gauge("xsched_xqueues", "XQueues by state", ["state"], registry=r)
        self._processes = Gauge("xsched_processes", "Registered processes", registry=r)
        self._latency = Histogram(
            "xsched_task_latency_seconds",
            "Task latency per XQueue (busy: ready -> idle; task: explicit spans)",
            ["xqueue", "name", "pid", "kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._gauge = Gauge("xsched_workload_gauge", "Workload gauges", ["pid", "gauge"], registry=r)
        self._decisions = Counter(
            "xsched_scheduler_decisions_total", "Policy runs", ["policy"], registry=r
        )
        self._memo_hits = Counter(
            "xsched_scheduler_memo_hits_total",
            "Decisions that wrote their suspend gates from the decision memo before the policy ran",
            registry=r,
        )
        self._operations = Counter(
            "xsched_operations_total", "Operations sent to agents", ["kind"], registry=r
        )
        self._events = Counter(
            "xsched_agent_events_total", "XQueue status events received from agents", registry=r
        )
        self._refusals = Counter(
            "xsched_refusals_total", "Requests refused (PERMISSION_DENIED)", ["method"], registry=r
        )
        self._gauge_names: dict[int, set[str]] = {}
        self.server = None
        if port is not None:
            self.server, _ = start_http_server(port, addr=host, registry=r)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def xqueue_states(self, records: Iterable[XQueueRecord]) -> None:
        tally = _Tally(
            "suspended" if r.info.suspended else ("ready" if r.ready else "idle") for r in records
        )
        for state in ("ready", "idle", "suspended"):
            self._xqueues.labels(state).set(tally.get(state, 0))

    def process_count(self, n: int) -> None:
        self._processes.set(n)

    def latencies(
        self, proc: ProcessRecord, rec: XQueueRecord, busy: Iterable[float], task: Iterable[float]
    ) -> None:
        for kind, samples in (("busy", busy), ("task", task)):
            hist = None
            for s in samples:
                hist = hist or self._latency.labels(*_labels(rec), kind)
                hist.observe(s)

    def gauges(self, proc: ProcessRecord) -> None:
        names = self._gauge_names.setdefault(proc.pid, set())
        for name, value in proc.gauges.items():
            names.add(name)
            self._gauge.labels(str(proc.pid), name).set(value)

    def decision(self, policy: str) -> None:
        self._decisions.labels(policy).inc()

    def memo_hit(self) -> None:
        self._memo_hits.inc()

    def operation(self, kind: str, count: int = 1) -> None:
        self._operations.labels(kind).inc(count)

    def events(self, count: int) -> None:
        self._events.inc(count)

    def refusal(self, method: str) -> None:
        self._refusals.labels(method).inc()

    def forget_xqueue(self, rec: XQueueRecord) -> None:
        for kind in ("busy", "task"):
            with contextlib.suppress(KeyError):
                self._latency.remove(*_labels(rec), kind)

    def forget_process(self, proc: ProcessRecord) -> None:
        for name in self._gauge_names.pop(proc.pid, set()):
            with contextlib.suppress(KeyError):
                self._gauge.remove(str(proc.pid), name)
