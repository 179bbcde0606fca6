"""The daemon's records rendered as control-API messages (what consoles and xschedctl see),
and the WatchStatus stream of them. Runs on the daemon's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from xschedd.policy.wire import hint_to_proto
from protos.xsched.v1 import control_pb2 as cpb, types_pb2 as pb
from xschedd.policy import policy_names
from xschedd.scheduler import GlobalScheduler
from xschedd.status import SHARE_WINDOW_S, LatencyWindow, ProcessRecord, XQueueRecord
from xschedd.watch import SHARE_REFRESH_S, Changes, ShareTracker, Watcher


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
        share=rec.share(),
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


def snapshot(sched: GlobalScheduler, heartbeat_ms: int = 0) -> cpb.Snapshot:
    return cpb.Snapshot(
        policy=policy_view(sched),
        processes=[process_view(sched, p) for _, p in sorted(sched.processes.items())],
        xqueues=[xqueue_view(sched, r) for _, r in sorted(sched.xqueues.items())],
        heartbeat_ms=heartbeat_ms,
        share_window_s=SHARE_WINDOW_S,
    )


def delta(sched: GlobalScheduler, changes: Changes) -> cpb.Delta:
    msg = cpb.Delta(
        changed_xqueues=[
            xqueue_view(sched, sched.xqueues[i]) for i in sorted(changes.xqueues) if i in sched.xqueues
        ],
        removed_xqueues=sorted(changes.removed_xqueues),
        changed_processes=[
            process_view(sched, sched.processes[p])
            for p in sorted(changes.processes)
            if p in sched.processes
        ],
        removed_pids=sorted(changes.removed_pids),
    )
    if changes.policy:
        msg.policy.CopyFrom(policy_view(sched))
    return msg


async def status_updates(
    sched: GlobalScheduler, watcher: Watcher, interval_s: float, heartbeat_ms: int
) -> AsyncIterator[cpb.StatusUpdate]:
    """One WatchStatus stream: a snapshot; then a delta per burst of changes (at most every
    `interval_s`), with the XQueues whose share drifted (and the policy, if its decision
count moved) every SHARE_REFRESH_S; and, when
    `heartbeat_ms` is set, a heartbeat after that long without a message."""
    loop = asyncio.get_running_loop()
    heartbeat = heartbeat_ms / 1e3 if heartbeat_ms else float("inf")
    shares = ShareTracker()
    snap = snapshot(sched, heartbeat_ms)
    shares.sent((v.info.xqueue_id, v.share) for v in snap.xqueues)
    decisions_sent = snap.policy.decisions
    yield cpb.StatusUpdate(snapshot=snap)
    last_sent = loop.time()
    next_shares = last_sent + SHARE_REFRESH_S
    while True:
        wake_at = min(last_sent + heartbeat, next_shares)
        if await watcher.wait(max(0.0, wake_at - loop.time())):
            await asyncio.sleep(interval_s)  # coalesce a burst into one delta
        changes = watcher.take()
        now = loop.time()
        if now >= next_shares:
            next_shares = now + SHARE_REFRESH_S
            changes.xqueues |= shares.drifted(sched.xqueues) - changes.removed_xqueues
            changes.policy |= sched.decisions != decisions_sent  # the decision count moves on
        if changes:
            msg = delta(sched, changes)
            shares.sent(((v.info.xqueue_id, v.share) for v in msg.changed_xqueues),
                        msg.removed_xqueues)
            if msg.HasField("policy"):
                decisions_sent = msg.policy.decisions
            yield cpb.StatusUpdate(delta=msg)
            last_sent = now
        elif now - last_sent >= heartbeat:
            yield cpb.StatusUpdate(heartbeat=cpb.Heartbeat())
            last_sent = now
