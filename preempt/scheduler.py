"""The local scheduler (XSCHED_SCHEDULER=LCL): a policy run in-process on every change.

It mirrors the status of this process's XQueues, runs the policy on every READY/IDLE
event, hint, timer and policy change, and applies the operations. All of its work runs
serially on its clock's thread (the real clock's timer thread, or whoever runs a
virtual clock), so the policy sees one change at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from hal import Clock
from hal.clock import Timer
from preempt.xqueue import EventKind, XQueue, XQueueEvent
from xschedd.policy import Policy, Resume, SetTimer, Status, Suspend, XQueueStatus
from xschedd.policy.hintbook import HintBook
from xschedd.policy.hints import Hint, PriorityHint

_RESCHEDULE_ON = {EventKind.READY, EventKind.IDLE, EventKind.CLOSED}

__all__ = ["LocalScheduler"]


class LocalScheduler:
    """Schedules the XQueues of this process with one policy (switchable online)."""

    def __init__(self, policy: Policy, clock: Clock) -> None:
        self.clock = clock
        self._policy = policy
        self._lock = threading.Lock()  # guards the maps below against the app's threads
        self._xqueues: dict[int, XQueue] = {}
        self._hints = HintBook()
        self._timer: Timer | None = None
        self._due = False  # a decision is queued on the clock and has not started yet
        self.decisions = 0

    @property
    def policy(self) -> Policy:
        return self._policy

    def add(self, xq: XQueue, hints: Iterable[Hint] = ()) -> None:
        """Schedule `xq` from now on, after giving the policy its hints."""
        with self._lock:
            self._xqueues[xq.id] = xq
        xq.add_listener(self._on_event)
        for hint in hints:
            self.hint(hint)
        self._request()

    def remove(self, xq: XQueue) -> None:
        """Stop scheduling `xq`; it is resumed so that it is never left suspended."""
        xq.remove_listener(self._on_event)
        with self._lock:
            self._xqueues.pop(xq.id, None)
        xq.resume()
        self._request()

    def hint(self, hint: Hint) -> None:
        with self._lock:
            self._hints.put(hint)
        self.clock.call_soon(lambda: self._apply_hint(hint))

    def set_policy(self, policy: Policy) -> None:
        """Switch policy online; the new one gets every hint given so far."""
        self.clock.call_soon(lambda: self._switch(policy))

    def _switch(self, policy: Policy) -> None:
        with self._lock:
            hints = HintBook(self._hints)
        hints.replay(policy)
        self._policy = policy
        self._reschedule()

    def _apply_hint(self, hint: Hint) -> None:
        if isinstance(hint, PriorityHint):
            with self._lock:
                xq = self._xqueues.get(hint.xqueue_id)
            if xq is not None:
                xq.hwq.set_priority(hint.priority)
        self._policy.on_hint(hint)
        self._request()

    def _on_event(self, event: XQueueEvent) -> None:
        if event.kind is EventKind.CLOSED:
            with self._lock:
                self._xqueues.pop(event.info.xqueue_id, None)
        if event.kind in _RESCHEDULE_ON:
            self._request()

    def _request(self) -> None:
        """Queue one decision; changes that come before it starts share it.

        Without this, N XQueues created at start-up queued N decisions over up to N
        queues each, and urgent work waited behind all of them (seconds at N = 1000).
        """
        with self._lock:
            if self._due:
                return
            self._due = True
        self.clock.call_soon(self._reschedule)

    def _on_timer(self) -> None:
        self._timer = None
        self._reschedule()

    def _reschedule(self) -> None:
        with self._lock:
            self._due = False  # from here on, a change needs a decision of its own
            xqueues = dict(self._xqueues)
        # Fresh reads, not the events': events of one queue can arrive out of order.
        status = Status(now=self.clock.now(), xqueues={xq_id: _status(xq) for xq_id, xq in xqueues.items()})
        self.decisions += 1
        for op in self._policy.schedule(status):
            if isinstance(op, SetTimer):
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = self.clock.call_at(op.at, self._on_timer)
                continue
            xq = xqueues.get(op.xqueue_id)
            if xq is None or xq.suspended is isinstance(op, Suspend):
                continue  # gone, or already as wanted (suspend/resume re-check under the lock)
            if isinstance(op, Suspend):
                xq.suspend()
            elif isinstance(op, Resume):
                xq.resume()


def _status(xq: XQueue) -> XQueueStatus:
    ready, suspended, ready_since = xq.readiness()
    return XQueueStatus(xq.id, xq.pid, xq.hwq.device_name, ready, suspended, ready_since)
