"""The console's model: applies WatchStatus snapshots and deltas, hands out immutable records.

Pure (no I/O, no threads): the object is owned by whichever event loop feeds it (the
app's). Besides mirroring the daemon it derives what the API does not send directly:
the share of each device's completed commands per XQueue over the last `share_window_s`
seconds (a proxy for device-time share) and a short latency history per XQueue.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import replace
from collections.abc import Callable, Iterable

from protos.xsched.v1 import control_pb2 as cpb, types_pb2 as pb
from xsched_tui.records import (
    Latency,
    LatencyHistory,
    PolicyRow,
    ProcessRow,
    QueueState,
    StatusChange,
    XQueueRow,
)

SHARE_WINDOW_S = 5.0
SHARE_REFRESH_S = 0.5  # shares over a 5 s window need no 10 Hz recomputation
HISTORY_LEN = 120
DEFAULT_UTILIZATION = 100  # xschedd.policy.hints.UTILIZATION_DEFAULT: not worth a column entry


def short_name(command: str) -> str:
    """A process's short name: the first word of its command line."""
    return command.split(maxsplit=1)[0] if command.strip() else "?"


def queue_state(info: pb.XQueueInfo, held: bool) -> QueueState:
    if held:
        return QueueState.HELD
    if info.suspended:
        return QueueState.SUSPENDED
    return QueueState.READY if info.state == pb.XQUEUE_STATE_READY else QueueState.IDLE


def latency_of(view: cpb.XQueueView) -> Latency:
    """Explicit task spans when the process reports them, else ready -> idle spans."""
    if view.task.count:
        s, kind = view.task, "task"
    else:
        s, kind = view.busy, "busy"
    return Latency(s.count, s.p50_ms, s.p99_ms, s.mean_ms, kind)


class _HintIndex:
    """PolicyInfo.hints, by the XQueue or process they concern, formatted for the table."""

    def __init__(self, hints: Iterable[pb.Hint] = ()) -> None:
        self.by_xqueue: dict[int, list[str]] = {}
        self.by_pid: dict[int, list[str]] = {}
        self.global_: list[str] = []
        for h in hints:
            self._add(h)

    def _add(self, h: pb.Hint) -> None:
        kind = h.WhichOneof("kind")
        if kind == "utilization":
            if h.utilization.utilization != DEFAULT_UTILIZATION:
                self.by_xqueue.setdefault(h.utilization.xqueue_id, []).append(
                    f"util={h.utilization.utilization}%")
        elif kind == "deadline":
            self.by_xqueue.setdefault(h.deadline.xqueue_id, []).append(
                f"ddl={h.deadline.deadline_us}us")
        elif kind == "laxity":
            m = h.laxity
            self.by_xqueue.setdefault(m.xqueue_id, []).append(
                f"lax={m.laxity_us}us({m.lax_priority}/{m.crit_priority})")
        elif kind == "process_utilization":
            self.by_pid.setdefault(h.process_utilization.pid, []).append(
                f"putil={h.process_utilization.utilization}%")
        elif kind == "window_active":
            self.by_pid.setdefault(h.window_active.pid, []).append(
                "active" if h.window_active.active else "inactive")
        elif kind == "timeslice":
            self.global_.append(f"timeslice={h.timeslice.timeslice_us}us")
        elif kind == "kdeadline":
            self.global_.append(f"k={h.kdeadline.k}")
        # priority has its own column (XQueueView.priority)

    def of(self, xqueue_id: int, pid: int) -> tuple[str, ...]:
        return tuple(self.by_xqueue.get(xqueue_id, ())) + tuple(self.by_pid.get(pid, ()))


class _ShareMeter:
    """Completed commands per XQueue over a sliding window, as shares of their device."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._samples: dict[int, deque[tuple[float, int]]] = {}

    def observe(self, xqueue_id: int, now: float, completed: int) -> None:
        samples = self._samples.setdefault(xqueue_id, deque())
        if samples and completed < samples[-1][1]:  # the process restarted its counters
            samples.clear()
        samples.append((now, completed))

    def forget(self, xqueue_id: int) -> None:
        self._samples.pop(xqueue_id, None)

    def work(self, xqueue_id: int, now: float) -> int:
        samples = self._samples.get(xqueue_id)
        if not samples:
            return 0
        horizon = now - self.window_s
        # keep one sample at or before the horizon: the baseline of the window
        while len(samples) > 1 and samples[1][0] <= horizon:
            samples.popleft()
        return samples[-1][1] - samples[0][1]


class StatusStore:
    """The console's mirror of xschedd, fed with StatusUpdate messages; see the module doc."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        share_window_s: float = SHARE_WINDOW_S,
        history_len: int = HISTORY_LEN,
    ) -> None:
        self._clock = clock
        self._history_len = history_len
        self._share_window_s = share_window_s
        self._reset()
        self.updates = 0

    def _reset(self) -> None:
        self.policy = PolicyRow()
        self.xqueues: dict[int, XQueueRow] = {}
        self.processes: dict[int, ProcessRow] = {}
        self._views: dict[int, cpb.XQueueView] = {}
        self._hints = _HintIndex()
        self._shares = _ShareMeter(self._share_window_s)
        self._p50: dict[int, deque[float]] = {}
        self._p99: dict[int, deque[float]] = {}
        self._last_count: dict[int, int] = {}
        self._latency: dict[int, Latency] = {}
        self._shares_at = float("-inf")

    # -- reading -------------------------------------------------------------------------
    def history(self, xqueue_id: int) -> LatencyHistory:
        return LatencyHistory(
            xqueue_id, tuple(self._p50.get(xqueue_id, ())), tuple(self._p99.get(xqueue_id, ()))
        )

    def kv_processes(self) -> list[ProcessRow]:
        return [p for _, p in sorted(self.processes.items()) if p.kv_blocks is not None]

    def devices(self) -> dict[str, int]:
        """XPU devices named by the XQueues, with how many XQueues each has."""
        counts: dict[str, int] = {}
        for row in self.xqueues.values():
            counts[row.device] = counts.get(row.device, 0) + 1
        return dict(sorted(counts.items()))

    # -- feeding -------------------------------------------------------------------------
    def clear(self) -> StatusChange:
        """Forget everything (the daemon went away)."""
        gone = StatusChange(
            removed_xqueues=frozenset(self.xqueues), removed_pids=frozenset(self.processes)
        )
        self._reset()
        return gone

    def apply(self, update: cpb.StatusUpdate) -> StatusChange:
        self.updates += 1
        kind = update.WhichOneof("kind")
        if kind == "snapshot":
            return self._apply_snapshot(update.snapshot)
        if kind == "delta":
            return self._apply_delta(update.delta)
        return StatusChange()

    def _apply_snapshot(self, snap: cpb.Snapshot) -> StatusChange:
        self.clear()
        self._set_policy(snap.policy)
        now = self._clock()
        for p in snap.processes:
            self.processes[p.pid] = self._process_row(p)
        for v in snap.xqueues:
            self._put_view(v, now)
        self._rebuild_rows(self._views)
        self._refresh_shares(now, force=True)
        return StatusChange(reset=True, policy=True)

    def _apply_delta(self, delta: cpb.Delta) -> StatusChange:
        now = self._clock()
        policy = delta.HasField("policy")
        touched: set[int] = set()
        if policy:
            self._set_policy(delta.policy)
            touched.update(self._views)  # hints may have changed for any XQueue
        removed_pids = set(delta.removed_pids)
        for pid in removed_pids:
            self.processes.pop(pid, None)
        changed_pids: set[int] = set()
        for p in delta.changed_processes:
            row = self._process_row(p)
            old = self.processes.get(p.pid)
            self.processes[p.pid] = row
            if old is None or old.name != row.name:
                touched.update(x for x in row.xqueue_ids if x in self._views)
            changed_pids.add(p.pid)
        removed = set(delta.removed_xqueues)
        for xid in removed:
            self._forget(xid)
        for v in delta.changed_xqueues:
            self._put_view(v, now)
            touched.add(v.info.xqueue_id)
        touched -= removed
        self._rebuild_rows(touched)
        touched |= self._refresh_shares(now)
        return StatusChange(
            xqueues=frozenset(touched),
            removed_xqueues=frozenset(removed),
            processes=frozenset(changed_pids),
            removed_pids=frozenset(removed_pids),
            policy=policy,
        )

    # -- internals -----------------------------------------------------------------------
    def _set_policy(self, info: cpb.PolicyInfo) -> None:
        self._hints = _HintIndex(info.hints)
        self.policy = PolicyRow(
            name=info.name or "-",
            gang=info.gang,
            available=tuple(info.available),
            decisions=info.decisions,
            global_hints=tuple(self._hints.global_),
        )

    @staticmethod
    def _process_row(p: cpb.ProcessView) -> ProcessRow:
        return ProcessRow(
            pid=p.pid,
            uid=p.uid,
            name=short_name(p.name),
            command=p.name,
            nice=p.nice,
            xqueue_ids=tuple(p.xqueue_ids),
            gauges=tuple(sorted(p.gauges.items())),
            connected_for_s=p.connected_for_s,
        )

    def _put_view(self, v: cpb.XQueueView, now: float) -> None:
        xid = v.info.xqueue_id
        self._views[xid] = v
        self._shares.observe(xid, now, v.info.completed)
        lat = self._latency[xid] = latency_of(v)
        if self._last_count.get(xid) != lat.count and lat.count:
            self._last_count[xid] = lat.count
            self._p50.setdefault(xid, deque(maxlen=self._history_len)).append(lat.p50_ms)
            self._p99.setdefault(xid, deque(maxlen=self._history_len)).append(lat.p99_ms)

    def _forget(self, xid: int) -> None:
        for table in (self._views, self.xqueues, self._p50, self._p99, self._last_count,
                      self._latency):
            table.pop(xid, None)  # type: ignore[attr-defined]
        self._shares.forget(xid)

    def _rebuild_rows(self, ids: Iterable[int]) -> None:
        for xid in ids:
            v = self._views[xid]
            info = v.info
            old = self.xqueues.get(xid)
            proc = self.processes.get(info.pid)
            self.xqueues[xid] = XQueueRow(
                xqueue_id=xid,
                name=info.name,
                pid=info.pid,
                process=proc.name if proc else "?",
                device=info.device,
                level=info.level,
                threshold=info.threshold,
                batch_size=info.batch_size,
                state=queue_state(info, v.held),
                pending=info.pending,
                in_flight=info.in_flight,
                submitted=info.submitted,
                completed=info.completed,
                priority=v.priority,
                hints=self._hints.of(xid, info.pid),
                latency=self._latency[xid],
                ready_for_s=v.ready_for_s,
                share=old.share if old else 0.0,
            )

    def _refresh_shares(self, now: float, force: bool = False) -> set[int]:
        """Recompute every share (at most every SHARE_REFRESH_S); return the XQueues whose
        shown share (0.1%) moved."""
        if not force and now - self._shares_at < SHARE_REFRESH_S:
            return set()
        self._shares_at = now
        work = {xid: self._shares.work(xid, now) for xid in self.xqueues}
        totals: dict[str, int] = {}
        for xid, w in work.items():
            dev = self.xqueues[xid].device
            totals[dev] = totals.get(dev, 0) + w
        moved: set[int] = set()
        for xid, w in work.items():
            row = self.xqueues[xid]
            total = totals[row.device]
            share = w / total if total else 0.0
            if round(share, 3) != round(row.share, 3):
                self.xqueues[xid] = replace(row, share=share)
                moved.add(xid)
        return moved

