"""The global scheduler: a status mirror of every registered process and XQueue, one
policy over all of them, and the operations it dispatches to the agents.

Owned by the daemon's event loop: every method runs there, one change at a time. It does
no I/O itself: operations leave through `dispatch`, timers through `call_later`, state
through `persist`, changes through the StatusBus.

Cost per decision: the policy's own pass over the status, plus one message per process
whose XQueues change (`dispatch` is called once per such process). The status handed to the policy is kept up to date as events
arrive (not rebuilt from the records on each decision), metrics are counted once per
decision, and the XQueue-state gauges are refreshed at most every STATE_METRICS_DELAY_S.
Events that arrive together (one read from an agent) are decided on once: `batch()`.

Decision memo: a policy that is `readiness_only` (HPF, HHPF) decides the same way for the
same XQueues, hints and ready set. Such decisions are remembered by (generation, ready
set), the generation counting every other change they depend on, and when that state
comes back (a periodic task going ready again), the remembered decision goes into the
suspend gates first: the urgent queue's suspends take effect before the policy runs.
The policy still decides, and if its answer differs (a change the generation missed),
the gates are put right at once, before any operation leaves.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from itertools import groupby
from typing import Protocol

import psutil

from hal import Level
from protos.xsched.v1 import agent_pb2
from protos.xsched.v1 import types_pb2 as pb
from xschedd.errors import InvalidArgument, NotFound
from xschedd.handover import HANDOVER_S, UNGATED_HANDOVER_S, Handover
from xschedd.metrics import Metrics
from xschedd.policy import (
    Operation,
    Policy,
    ProcessStatus,
    Resume,
    RunOnly,
    SetTimer,
    Status,
    Suspend,
    XQueueStatus,
    make_policy,
)
from xschedd.policy import hints as H
from xschedd.policy.gang import gang as gang_ops
from xschedd.policy.hintbook import HintBook, hint_pid, hint_xqueue
from xschedd.status import ProcessRecord, XQueueRecord
from xschedd.watch import StatusBus

log = logging.getLogger(__name__)

# Events that change what a policy decides.
_RESCHEDULE_ON = {pb.EVENT_KIND_READY, pb.EVENT_KIND_IDLE, pb.EVENT_KIND_CLOSED}
HINT_GC_INTERVAL_S = 5.0
STATE_METRICS_DELAY_S = 0.1
MEMO_ENTRIES = 64  # remembered decisions; forgotten all at once beyond it
_pid_of = (32).__rrshift__  # xqueue_id -> its process's pid (xqueue_id >> 32), in C
_DEACTIVATE = int(Level.DEACTIVATE)


def _never(xqueue_id: int) -> None:
    return None


class Cancellable(Protocol):
    def cancel(self) -> None: ...


# (pid, [(xqueue_id, suspend), ...]): one call per process per decision, in order
Dispatch = Callable[[int, list[tuple[int, bool]]], None]
# The same, called for every process of a decision before any Dispatch: the suspend
# gates (xschedd/gates.py), shared memory that takes effect as it is written.
Gate = Dispatch
# (pid, xqueue_id, priority): the priority for the XQueue's hardware queue (see _push_priority)
SetPriority = Callable[[int, int, int], None]
CallLater = Callable[[float, Callable[[], None]], Cancellable]


class GlobalScheduler:
    """Runs one policy (switchable online, optionally in gang mode) over all agents' XQueues."""

    def __init__(
        self,
        policy: str,
        *,
        dispatch: Dispatch,
        call_later: CallLater,
        set_priority: SetPriority = lambda pid, xqueue_id, priority: None,
        gate: Gate = lambda pid, changes: None,
        gated: Callable[[int], bool] = lambda xqueue_id: False,
        gang: bool = False,
        hints: Iterable[H.Hint] = (),
        bus: StatusBus | None = None,
        persist: Callable[[bool], None] = lambda urgent: None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        pid_alive: Callable[[int], bool] = psutil.pid_exists,
    ) -> None:
        self.clock = clock
        self.processes: dict[int, ProcessRecord] = {}
        self.xqueues: dict[int, XQueueRecord] = {}
        self.hints = HintBook(hints)
        self.bus = bus or StatusBus()
        self.metrics = metrics or Metrics(None)
        self.decisions = 0
        self.gang = gang
        # make before break in time sharing: resumes first, level-2/3 suspends a little later
        self._handover = Handover(dispatch, call_later)
        self._set_priority = set_priority
        self._gate = gate
        self._gated = gated  # whether an XQueue has a suspend gate (`gate` stops its launches)
        self._call_later = call_later
        self._persist = persist
        self._pid_alive = pid_alive
        self._timer: Cancellable | None = None
        self._policy: Policy = make_policy(policy)
        # What the policy sees, kept in step with the records (see the module docstring).
        self._xqueue_status: dict[int, XQueueStatus] = {}
        self._process_status: dict[int, ProcessStatus] = {}
        # The last operation sent for each XQueue (in neither: nothing since it registered),
        # and the XQueues an operator holds suspended.
        self._sent_suspend: set[int] = set()
        self._sent_resume: set[int] = set()
        self._held: set[int] = set()
        # The priority each XQueue's hardware queue has, as far as we know: its process's
        # own at creation (the runtime sets it), then what we pushed.
        self._hw_priority: dict[int, int] = {}
        # The decision memo (module docstring): ready XQueues, the generation, decisions.
        self._ready_ids: set[int] = set()
        self._generation = 0
        self._memo: dict[tuple[int, frozenset[int]], tuple[frozenset[int], frozenset[int]]] = {}
        self.memo_hits = 0
        self._batch_depth = 0
        self._decision_due = False
        self._state_metrics_due = False
        self.hints.replay(self._policy)

    @property
    def policy_name(self) -> str:
        return self._policy.name

    # -- agents -------------------------------------------------------------------------
    def register(
        self,
        pid: int,
        uid: int | None,
        name: str,
        nice: int,
        infos: Iterable[pb.XQueueInfo],
        hints: Iterable[H.Hint],
    ) -> ProcessRecord:
        """A process (re-)registers with its XQueues; a previous record of `pid` is replaced."""
        infos = list(infos)
        hints = list(hints)
        for info in infos:
            self._check_owned(pid, info.xqueue_id)
        for hint in hints:
            target = hint_pid(hint)
            if target is not None and target != pid:
                raise InvalidArgument(f"process {pid} may not register a hint about process {target}")
        if pid in self.processes:
            self._drop_process(pid)
        proc = ProcessRecord(pid, uid, name, nice, self.clock())
        self.processes[pid] = proc
        self._process_status[pid] = ProcessStatus(pid, nice, name)
        own = _priorities(hints)
        for info in infos:
            self._add_xqueue(proc, info, own)
        self._adopt_hints(hints)
        for info in infos:
            self._push_priority(info.xqueue_id)
        self.bus.process_changed(pid)
        self.metrics.process_count(len(self.processes))
        log.info("process %d (%s, uid %s) registered %d XQueue(s)", pid, name, uid, len(infos))
        self.reschedule()
        return proc

    def unregister(self, pid: int) -> None:
        """The process's stream ended: forget it and its XQueues (hints stay while it lives)."""
        if pid not in self.processes:
            return
        self._drop_process(pid)
        self.metrics.process_count(len(self.processes))
        log.info("process %d left", pid)
        self.reschedule()

    def xqueue_event(
        self,
        pid: int,
        kind: int,
        info: pb.XQueueInfo,
        latency_s: float | None = None,
        hints: Iterable[H.Hint] = (),
        ready_for_s: float = 0.0,
    ) -> None:
        """An agent's news of one XQueue; `ready_for_s`: how long it had been ready when
        the news left (a READY may leave while the task it starts runs)."""
        hints = list(hints)
        proc = self._process(pid)
        self._check_owned(pid, info.xqueue_id)
        rec = self.xqueues.get(info.xqueue_id)
        if kind == pb.EVENT_KIND_CLOSED:
            if rec is not None:
                self._remove_xqueue(rec)
                self.reschedule()
            return
        new = rec is None
        if new:  # its own hints, and global ones as at registration (unless the daemon holds one)
            own = [h for h in hints if hint_pid(h) in (pid, None)]
            rec = self._add_xqueue(proc, info, _priorities(own))
            self._adopt_hints(own)
        else:
            for hint in hints:  # an application changing its own hints at run time
                if hint_pid(hint) == pid:
                    self.hints.put(hint)
                    self._policy.on_hint(hint)
                    self._generation += 1
            was_ready = rec.ready
            heard_before, rec.heard_at = rec.heard_at, self.clock()
            if info.device != rec.info.device:
                self._generation += 1
            rec.info = info
            # READY starts a span (a task) also when the IDLE between two back-to-back
            # tasks never came: its agent drops an IDLE it knows is stale, and deadline
            # policies (KEDF, LAX) count from the span's start, which the news may follow
            # (`ready_for_s`), but not what the daemon heard of the queue before it.
            if rec.ready and (kind == pb.EVENT_KIND_READY or not was_ready):
                rec.ready_since = max(rec.heard_at - ready_for_s, heard_before)
                self._ready_ids.add(rec.xqueue_id)
            elif not rec.ready:
                rec.ready_since = None
                self._ready_ids.discard(rec.xqueue_id)
            self._xqueue_status[rec.xqueue_id] = _status_of(rec)
        if hints:
            self._push_priority(info.xqueue_id)
        if latency_s is not None:
            (rec.task if kind == pb.EVENT_KIND_TASK else rec.busy).extend([latency_s])
        self.bus.xqueue_changed(info.xqueue_id)
        if new or hints or kind in _RESCHEDULE_ON:
            self.reschedule()

    def report(
        self,
        pid: int,
        latencies: Iterable[agent_pb2.LatencyBatch],
        gauges: dict[str, float],
        nice: int,
    ) -> None:
        proc = self._process(pid)
        for batch in latencies:
            rec = proc.xqueues.get(batch.xqueue_id)
            if rec is None:
                continue
            rec.busy.extend(list(batch.busy_s))
            rec.task.extend(list(batch.task_s))
            self.metrics.latencies(proc, rec, batch.busy_s, batch.task_s)
        if gauges:
            proc.gauges.update(gauges)
            self.metrics.gauges(proc)
        changed = nice != proc.nice
        proc.nice = nice
        if changed:
            self._process_status[pid] = ProcessStatus(pid, nice, proc.name)
            self._generation += 1
        self.bus.process_changed(pid)
        if changed:
            self.reschedule()

    # -- operators ----------------------------------------------------------------------
    def hint(self, hint: H.Hint) -> None:
        """Give the policy a hint (and remember it across policy switches and restarts)."""
        xq = hint_xqueue(hint)
        if xq is not None and xq not in self.xqueues:
            raise NotFound(f"no XQueue {xq:#x} is registered")
        pid = getattr(hint, "pid", None)
        if pid is not None and pid not in self.processes:
            raise NotFound(f"no process {pid} is registered")
        self.hints.put(hint)
        self._policy.on_hint(hint)
        self._generation += 1
        if xq is not None:
            self._push_priority(xq)
            self.bus.xqueue_changed(xq)
        self.bus.policy_changed()
        self._persist(True)
        self.reschedule()

    def set_policy(self, name: str | None, gang: bool | None = None) -> None:
        """Switch policy online (the new one gets every hint so far) and/or gang mode."""
        if name:
            policy = make_policy(name)
            self.hints.replay(policy)
            self._policy = policy
            log.info("policy is now %s", policy.name)
        if gang is not None:
            self.gang = gang
        self._generation += 1
        self.bus.policy_changed()
        self._persist(True)
        self.reschedule()

    def hold(self, xqueue_id: int, held: bool) -> XQueueRecord:
        rec = self.xqueue(xqueue_id)
        rec.held = held
        (self._held.add if held else self._held.discard)(xqueue_id)
        self._generation += 1
        self.bus.xqueue_changed(xqueue_id)
        self.reschedule()
        return rec

    def xqueue(self, xqueue_id: int) -> XQueueRecord:
        rec = self.xqueues.get(xqueue_id)
        if rec is None:
            raise NotFound(f"no XQueue {xqueue_id:#x} is registered")
        return rec

    def priority_of(self, xqueue_id: int) -> int:
        hint = self.hints.get(("PriorityHint", xqueue_id))
        return hint.priority if isinstance(hint, H.PriorityHint) else H.PRIORITY_DEFAULT

    def collect_hints(self) -> None:
        """Forget hints of processes that are gone (not registered and not alive)."""
        pids = {hint_pid(h) for h in self.hints} - {None} - set(self.processes)
        dropped = [p for p in pids if not self._pid_alive(p)]
        for pid in dropped:
            self.hints.forget_pid(pid)
            self._generation += 1
        if dropped:
            log.info("forgot the hints of exited processes %s", sorted(dropped))
            self._persist(False)

    # -- the scheduling step -------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Decide once, on the latest state, for everything that happens inside (nestable).

        A change inside that would decide marks a decision due; it is made on leaving the
        outermost batch, also when the batch ends with an exception.
        """
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0 and self._decision_due:
                self.reschedule()

    def reschedule(self) -> None:
        if self._batch_depth:
            self._decision_due = True
            return
        self._decision_due = False
        key = None
        early = None
        if self._policy.readiness_only:
            key = (self._generation, frozenset(self._ready_ids))
            wanted = self._memo.get(key)
            if wanted is not None:  # this state was decided before: gate as then, then decide
                self.memo_hits += 1
                self.metrics.memo_hit()
                early = self._changes_by_pid(*wanted)
                for pid, changes in early:
                    self._gate(pid, changes)
        now = self.clock()
        status = Status(now=now, xqueues=dict(self._xqueue_status), processes=dict(self._process_status))
        try:
            ops = self._policy.schedule(status)
            if self.gang:
                ops = gang_ops(status, ops)
        except BaseException:
            if early:  # the gates go back to what was sent before the error goes up
                self._regate(early)
            raise
        self.decisions += 1
        if isinstance(ops, RunOnly):
            suspend, resume = self._wanted_from_sets(ops)
            for op in ops.timers:
                self._set_timer(op.at - now)
        else:
            suspend, resume = self._wanted_from_ops(ops, now)
        if key is not None:
            if len(self._memo) >= MEMO_ENTRIES:
                self._memo.clear()
            self._memo[key] = (frozenset(suspend), frozenset(resume))
        # Only changes are sent: what differs from the last operation sent for each XQueue.
        by_pid = self._changes_by_pid(suspend, resume)
        suspend -= self._sent_suspend
        resume -= self._sent_resume
        self._sent_suspend -= resume
        self._sent_suspend |= suspend
        self._sent_resume -= suspend
        self._sent_resume |= resume
        # Every process's gates, then the operations, then the bookkeeping.
        if early is None:
            for pid, changes in by_pid:
                self._gate(pid, changes)
        elif early != by_pid:  # the memo was wrong: every gate it or the policy touched, as sent
            self._regate([*early, *by_pid])
        self._handover.send(by_pid, self._handover_delay if self._policy.handover else _never)
        self.metrics.decision(self._policy.name)
        for suspended, count in ((True, len(suspend)), (False, len(resume))):
            if count:
                self.metrics.operation("suspend" if suspended else "resume", count)
        if not self._state_metrics_due:
            self._state_metrics_due = True
            self._call_later(STATE_METRICS_DELAY_S, self._update_state_metrics)

    def _regate(self, changes_by_pid: Iterable[tuple[int, list[tuple[int, bool]]]]) -> None:
        """Write the gates of these changes' XQueues as the operations last sent say."""
        touched = {xqueue_id for _, changes in changes_by_pid for xqueue_id, _ in changes}
        for pid, ids in groupby(sorted(touched), _pid_of):
            self._gate(pid, [(xqueue_id, xqueue_id in self._sent_suspend) for xqueue_id in ids])

    def _changes_by_pid(
        self, suspend: AbstractSet[int], resume: AbstractSet[int]
    ) -> list[tuple[int, list[tuple[int, bool]]]]:
        """What differs from the last operations sent, as (pid, [(xqueue_id, suspend), ...])
        in id order. XQueue ids are pid << 32 | n (checked at registration): in id order,
        each process's XQueues come together."""
        suspend = suspend - self._sent_suspend
        return [
            (pid, [(xqueue_id, xqueue_id in suspend) for xqueue_id in ids])
            for pid, ids in groupby(sorted(suspend | (resume - self._sent_resume)), _pid_of)
        ]

    def _wanted_from_sets(self, ops: RunOnly) -> tuple[set[int], set[int]]:
        """The XQueues to be suspended and resumed, by set arithmetic (in C): the fast
        path for every policy that answers with `run_only`."""
        ids = ops.ids & self.xqueues.keys()
        suspend = ids - ops.runnable
        if self._held:
            suspend |= self._held & ids
        return suspend, ids - suspend

    def _wanted_from_ops(self, ops: Iterable[Operation], now: float) -> tuple[set[int], set[int]]:
        """The same from any list of operations (one pass; an operator's hold wins)."""
        suspend: set[int] = set()
        resume: set[int] = set()
        known = self.xqueues
        held = self._held
        for op in ops:
            if isinstance(op, (Suspend, Resume)):
                if op.xqueue_id not in known:
                    continue
                if isinstance(op, Suspend) or op.xqueue_id in held:
                    suspend.add(op.xqueue_id)
                    resume.discard(op.xqueue_id)
                else:
                    resume.add(op.xqueue_id)
                    suspend.discard(op.xqueue_id)
            elif isinstance(op, SetTimer):
                self._set_timer(op.at - now)
        return suspend, resume

    def shutdown(self) -> None:
        self._handover.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- internals ------------------------------------------------------------------------
    def _push_priority(self, xqueue_id: int) -> None:
        """Tell the XQueue's process its priority if the hints changed it since the last
        time: the agent hands it to the hardware queue (a CUDA stream priority, which
        under MPS orders blocks across processes too). Scheduling stays with the policy."""
        rec = self.xqueues.get(xqueue_id)
        if rec is None:
            return
        priority = self.priority_of(xqueue_id)
        if self._hw_priority.get(xqueue_id) != priority:
            self._hw_priority[xqueue_id] = priority
            self._set_priority(rec.pid, xqueue_id, priority)

    def _update_state_metrics(self) -> None:
        self._state_metrics_due = False
        self.metrics.xqueue_states(self.xqueues.values())

    def _set_timer(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._call_later(max(0.0, delay), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.reschedule()

    def _process(self, pid: int) -> ProcessRecord:
        proc = self.processes.get(pid)
        if proc is None:
            raise NotFound(f"process {pid} is not registered")
        return proc

    @staticmethod
    def _check_owned(pid: int, xqueue_id: int) -> None:
        if xqueue_id >> 32 != pid or xqueue_id & 0xFFFFFFFF == 0:
            raise InvalidArgument(
                f"XQueue id {xqueue_id:#x} does not belong to process {pid} (ids are pid << 32 | n)"
            )

    def _add_xqueue(self, proc: ProcessRecord, info: pb.XQueueInfo, own: dict[int, int]) -> XQueueRecord:
        """`own`: the priorities its process sent with its XQueues (what it gave the hardware)."""
        rec = XQueueRecord(info=info, clock=self.clock)
        self._hw_priority[info.xqueue_id] = own.get(info.xqueue_id, H.PRIORITY_DEFAULT)
        self._generation += 1
        if rec.ready:
            rec.ready_since = self.clock()
            self._ready_ids.add(info.xqueue_id)
        proc.xqueues[info.xqueue_id] = rec
        self.xqueues[info.xqueue_id] = rec
        self._xqueue_status[info.xqueue_id] = _status_of(rec)
        self.bus.xqueue_changed(info.xqueue_id)
        self.bus.process_changed(proc.pid)
        return rec

    def _remove_xqueue(self, rec: XQueueRecord) -> None:
        self.xqueues.pop(rec.xqueue_id, None)
        self._hw_priority.pop(rec.xqueue_id, None)
        self._ready_ids.discard(rec.xqueue_id)
        self._generation += 1
        for ids in (self._sent_suspend, self._sent_resume, self._held):
            ids.discard(rec.xqueue_id)
        self._xqueue_status.pop(rec.xqueue_id, None)
        proc = self.processes.get(rec.pid)
        if proc is not None:
            proc.xqueues.pop(rec.xqueue_id, None)
            self.bus.process_changed(proc.pid)
        self.metrics.forget_xqueue(rec)
        self.bus.xqueue_removed(rec.xqueue_id)

    def _handover_delay(self, xqueue_id: int) -> float | None:
        """How late a hand-over may send this XQueue's suspend (xschedd.handover): a
        level-2/3 XQueue's suspend flushes its work in flight; level 1 has its gate and the
        work in flight, and its suspend goes at once (None)."""
        rec = self.xqueues.get(xqueue_id)
        if rec is None or rec.level < _DEACTIVATE:
            return None
        return HANDOVER_S if self._gated(xqueue_id) else UNGATED_HANDOVER_S

    def _drop_process(self, pid: int) -> None:
        self._handover.forget(pid)
        proc = self.processes.pop(pid)
        self._process_status.pop(pid, None)
        for rec in list(proc.xqueues.values()):
            self._remove_xqueue(rec)
        self.metrics.forget_process(proc)
        self.bus.process_removed(pid)

    def _adopt_hints(self, hints: list[H.Hint]) -> None:
        """An application's own hints count unless the daemon already holds one of that kind."""
        adopted = False
        for hint in hints:
            if not self.hints.has(hint):
                self.hints.put(hint)
                self._policy.on_hint(hint)
                adopted = True
                self._generation += 1
        if adopted:
            self._persist(False)
        # Hints kept from before (a daemon restart, or an agent reconnecting) already
        # live in the policy: nothing to replay.


def _priorities(hints: Iterable[H.Hint]) -> dict[int, int]:
    return {h.xqueue_id: h.priority for h in hints if isinstance(h, H.PriorityHint)}


def _status_of(rec: XQueueRecord) -> XQueueStatus:
    return XQueueStatus(
        xqueue_id=rec.xqueue_id,
        pid=rec.pid,
        device=rec.info.device,
        ready=rec.ready,
        suspended=rec.info.suspended,
        ready_since=rec.ready_since,
    )
