"""The daemon's records rendered as control-API messages (what consoles and xschedctl see)."""

from __future__ import annotations

from xschedd.policy.wire import hint_to_proto
from protos.xsched.v1 import control_pb2 as cpb, types_pb2 as pb
from xschedd.policy import policy_names
from xschedd.scheduler import GlobalScheduler
from xschedd.status import LatencyWindow, ProcessRecord, XQueueRecord


def latency_view(window: LatencyWindow) -> pb.LatencySummary:
    s = window.summary()
    return pb.LatencySummary(
        count=s.count, p50_ms=s.p50_s * 1e3, p99_ms=s.p99_s * 1e3, mean_ms=s.mean_s * 1e3
    )


def xqueue_view(sched: GlobalScheduler, rec: XQueueRecord) -> cpb.XQueueView:
    now = sched.clock()
    return cpb.XQueueView(
        info=rec.info,
        held=rec.held,
        busy=latency_view(rec.busy),
        task=latency_view(rec.task),
        ready_for_s=0.0 if rec.ready_since is None else max(0.0, now - rec.ready_since),
        priority=sched.priority_of(rec.xqueue_id),
    )


def process_view(sched: GlobalScheduler, proc: ProcessRecord) -> cpb.ProcessView:
    return cpb.ProcessView(
        pid=proc.pid,
        uid=0 if proc.uid is None else proc.uid,
        name=proc.name,
        nice=proc.nice,
        xqueue_ids=sorted(proc.xqueues),
        gauges=proc.gauges,
        connected_for_s=max(0.0, sched.clock() - proc.connected_at),
    )


def policy_view(sched: GlobalScheduler) -> cpb.PolicyInfo:
    return cpb.PolicyInfo(
        name=sched.policy_name,
        gang=sched.gang,
        available=policy_names(),
        decisions=sched.decisions,
        hints=[hint_to_proto(h) for h in sched.hints],
    )


def snapshot(sched: GlobalScheduler) -> cpb.Snapshot:
    return cpb.Snapshot(
        policy=policy_view(sched),
        processes=[process_view(sched, p) for _, p in sorted(sched.processes.items())],
        xqueues=[xqueue_view(sched, r) for _, r in sorted(sched.xqueues.items())],
    )
