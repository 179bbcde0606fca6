"""The console's model: applies WatchStatus snapshots and deltas, hands out immutable records.

Pure (no I/O, no threads): the object is owned by whichever event loop feeds it (the
app's). Applying an update costs what the update changed, not what the store holds: the
daemon's views are kept as they came, and an XQueue's row record is built only when
someone reads it (the table reads the rows on screen), then cached until its view
changes. Besides mirroring the daemon it keeps a short latency history per XQueue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping

from protos.xsched.v1 import control_pb2 as cpb, types_pb2 as pb
from xschedd.policy.hints import UTILIZATION_DEFAULT
from xsched_tui.records import (
    Latency,
    LatencyHistory,
    PolicyRow,
    ProcessRow,
    QueueState,
    StatusChange,
    XQueueRow,
)

HISTORY_LEN = 120


def short_name(command: str) -> str:
    """A process's short name: the first word of its command line."""
    return command.split(maxsplit=1)[0] if command.strip() else "?"


def queue_state(info: pb.XQueueInfo, held: bool) -> QueueState:
    if held:
        return QueueState.HELD
    if info.suspended:
        return QueueState.SUSPENDED
    return QueueState.READY if info.state == pb.XQUEUE_STATE_READY else QueueState.IDLE


def latency_summary(view: cpb.XQueueView) -> tuple[pb.LatencySummary, str]:
    """Explicit task spans when the process reports them, else ready -> idle spans."""
    task = view.task
    return (task, "task") if task.count else (view.busy, "busy")


def latency_of(view: cpb.XQueueView) -> Latency:
    s, kind = latency_summary(view)
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
            if h.utilization.utilization != UTILIZATION_DEFAULT:  # the default: no entry
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


class _Rows(Mapping[int, XQueueRow]):
    """The store's XQueues as row records, built on first read (see the module docstring)."""

    def __init__(self, store: StatusStore) -> None:
        self._store = store

    def __getitem__(self, xqueue_id: int) -> XQueueRow:
        return self._store._row(xqueue_id)

    def __contains__(self, xqueue_id: object) -> bool:
        return xqueue_id in self._store._views

    def __iter__(self) -> Iterator[int]:
        return iter(self._store._views)

    def __len__(self) -> int:
        return len(self._store._views)


class StatusStore:
    """The console's mirror of xschedd, fed with StatusUpdate messages; see the module doc."""

    def __init__(self, history_len: int = HISTORY_LEN) -> None:
        self._history_len = history_len
        self.xqueues: Mapping[int, XQueueRow] = _Rows(self)
        self._reset()
        self.updates = 0

    def _reset(self) -> None:
        self.policy = PolicyRow()
        self.processes: dict[int, ProcessRow] = {}
        self.share_window_s = 0.0
        self._views: dict[int, cpb.XQueueView] = {}
        self._rows: dict[int, XQueueRow] = {}  # built rows, dropped when their view changes
        self._devices: dict[int, str] = {}
        self._hints = _HintIndex()
        self._p50: dict[int, deque[float]] = {}
        self._p99: dict[int, deque[float]] = {}
        self._last_count: dict[int, int] = {}

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
        for device in self._devices.values():
            counts[device] = counts.get(device, 0) + 1
        return dict(sorted(counts.items()))

    # -- feeding -------------------------------------------------------------------------
    def clear(self) -> StatusChange:
        """Forget everything (the daemon went away)."""
        gone = StatusChange(
            removed_xqueues=frozenset(self._views), removed_pids=frozenset(self.processes)
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
        return StatusChange()  # a heartbeat: the link watches those, nothing changed

    def _apply_snapshot(self, snap: cpb.Snapshot) -> StatusChange:
        self.clear()
        self._set_policy(snap.policy)
        self.share_window_s = snap.share_window_s
        for p in snap.processes:
            self.processes[p.pid] = self._process_row(p)
        for v in snap.xqueues:
            self._put_view(v)
        return StatusChange(reset=True, policy=True)

    def _apply_delta(self, delta: cpb.Delta) -> StatusChange:
        policy = delta.HasField("policy")
        touched: set[int] = set()
        if policy:
            self._set_policy(delta.policy)
            self._rows.clear()  # hints may have changed for any XQueue
            touched.update(self._views)
        removed_pids = set(delta.removed_pids)
        for pid in removed_pids:
            self.processes.pop(pid, None)
        changed_pids: set[int] = set()
        for p in delta.changed_processes:
            row = self._process_row(p)
            old = self.processes.get(p.pid)
            self.processes[p.pid] = row
            if old is None or old.name != row.name:  # the process column of its XQueues
                for xid in row.xqueue_ids:
                    if xid in self._views:
                        self._rows.pop(xid, None)
                        touched.add(xid)
            changed_pids.add(p.pid)
        removed = set(delta.removed_xqueues)
        for xid in removed:
            self._forget(xid)
        for v in delta.changed_xqueues:
            touched.add(self._put_view(v))
        touched -= removed
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

    def _put_view(self, v: cpb.XQueueView) -> int:
        """Keep the view; note a latency sample when its count moved. Runs for every changed
        XQueue of every update, so it reads as few fields as it can."""
        xid = v.info.xqueue_id
        if xid not in self._devices:
            self._devices[xid] = v.info.device
        self._views[xid] = v
        self._rows.pop(xid, None)
        lat, _ = latency_summary(v)
        count = lat.count
        if count and self._last_count.get(xid) != count:
            self._last_count[xid] = count
            p50 = self._p50.get(xid)
            if p50 is None:
                p50 = self._p50[xid] = deque(maxlen=self._history_len)
                self._p99[xid] = deque(maxlen=self._history_len)
            p50.append(lat.p50_ms)
            self._p99[xid].append(lat.p99_ms)
        return xid

    def _forget(self, xid: int) -> None:
        for table in (self._views, self._rows, self._devices, self._p50, self._p99,
                      self._last_count):
            table.pop(xid, None)  # type: ignore[attr-defined]

    def _row(self, xid: int) -> XQueueRow:
        row = self._rows.get(xid)
        if row is not None:
            return row
        v = self._views[xid]  # KeyError for an unknown XQueue, as a Mapping should
        info = v.info
        proc = self.processes.get(info.pid)
        row = self._rows[xid] = XQueueRow(
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
            latency=latency_of(v),
            ready_for_s=v.ready_for_s,
            share=v.share,
        )
        return row
