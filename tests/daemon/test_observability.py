"""What operators watch: Prometheus metrics and the WatchStatus stream of deltas."""

from __future__ import annotations

import urllib.request

from protos.xsched.v1 import control_pb2 as cpb
from tests.daemon.conftest import free_port, wait_for


def test_metrics_endpoint_reports_queues_decisions_and_latencies(make_env) -> None:
    port = free_port()
    env = make_env("--metrics-port", str(port), "--policy", "HPF")
    w = env.workload("name=q,priority=3,commands=2,command_us=200", duration_s=4)
    wait_for(lambda: env.daemon.xqueues(), 10)

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return r.read().decode()

    text = wait_for(lambda: (t := scrape()) and "xsched_xqueues{" in t and t, 10)
    for name in ("xsched_xqueues", "xsched_processes", "xsched_scheduler_decisions_total",
                 "xsched_operations_total"):
        assert name in text, name
    # latency histograms, fed by the agent's reports (a queue's series leave with it)
    wait_for(lambda: 'xsched_task_latency_seconds_bucket{' in scrape(), 3)
    # the queue goes ready and idle again and again: HPF's decisions come from the memo
    wait_for(lambda: _value(scrape(), "xsched_scheduler_memo_hits_total") > 0, 5)
    assert w.wait(20) == 0


def _value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_watch_status_sends_a_snapshot_then_deltas_for_changes(env) -> None:
    stub = env.daemon.stub()
    stream = stub.WatchStatus(cpb.WatchStatusRequest(min_interval_ms=50), timeout=30)
    first = next(stream)
    assert first.WhichOneof("kind") == "snapshot"
    assert not first.snapshot.xqueues
    w = env.workload("name=watched,commands=2,command_us=200", duration_s=2)
    seen: set[int] = set()
    removed: set[int] = set()
    for update in stream:
        assert update.WhichOneof("kind") == "delta"
        seen.update(v.info.xqueue_id for v in update.delta.changed_xqueues)
        removed.update(update.delta.removed_xqueues)
        if seen and removed >= seen:
            break  # the queue appeared, changed, and left when its process exited
    stream.cancel()
    assert w.wait(20) == 0
    assert len(seen) == 1 and removed == seen
