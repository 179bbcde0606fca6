"""Make before break: when a time-sharing decision hands the device from some XQueues to
others, the resumes go out at once and the suspends of level-2/3 XQueues `HANDOVER_S`
later.

Why, measured on the H100 without MPS (two processes, UP 75/25, 8-layer stacks at level
2, about 90 hand-overs a second): sent together, 170 tasks/s in all; with the suspends
0.3 ms behind the resumes, 231 (level 1: 282). A level-2 suspend stops its process's
work within tens of microseconds, often before the other process's resume has reached
it, and a GPU left with one parked or napping context and another that only just got
work back gives the second its time slice late: about 2 ms per hand-over went idle. With
the resume first, the incoming process has work on the GPU before the outgoing one
stops, as at level 1, where the work still in flight covers the switch.

The deferred suspends are exact: a later decision for the same process sends what is
still deferred first (less what it changes itself: a suspend undone by a resume is
dropped, as if it had never been decided), so no operation is lost, reordered against a
newer one for its XQueue, or sent twice; a process that goes away takes its own along.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

HANDOVER_S = 0.3e-3

# [(xqueue_id, suspend), ...] for one process, as xschedd.scheduler.Dispatch takes them
Changes = list[tuple[int, bool]]


class Handover:
    """Sends one decision's operations through `dispatch`, deferring some suspends (above).

    `call_later(delay, fn)` returns something with `cancel()` (an asyncio handle)."""

    def __init__(self, dispatch: Callable[[int, Changes], None], call_later: Callable[[float, Callable[[], None]], Any],
                 delay_s: float = HANDOVER_S) -> None:  # fmt: skip
        self._dispatch = dispatch
        self._call_later = call_later
        self.delay_s = delay_s
        self._deferred: dict[int, Changes] = {}
        self._timer = None

    @property
    def deferred(self) -> dict[int, Changes]:
        """pid -> its suspends not sent yet (a copy)."""
        return {pid: list(changes) for pid, changes in self._deferred.items()}

    def send(self, by_pid: Iterable[tuple[int, Changes]], deferrable: Callable[[int], bool]) -> None:
        """Dispatch one decision. Where it resumes anything, suspends of XQueues for which
        `deferrable(xqueue_id)` holds wait `delay_s`; processes are sent to in the order
        given, each process's changes in one call."""
        by_pid = list(by_pid)
        handing_over = any(not suspend for _, changes in by_pid for _, suspend in changes)
        for pid, changes in by_pid:
            touched = {xqueue_id for xqueue_id, _ in changes}
            earlier = [change for change in self._deferred.pop(pid, ()) if change[0] not in touched]
            now: Changes = []
            later: Changes = []
            (later if handing_over else now).extend(earlier)  # what was deferred goes first
            for change in changes:
                (later if handing_over and change[1] and deferrable(change[0]) else now).append(change)
            if later:
                self._deferred[pid] = later
            if now:
                self._dispatch(pid, now)
        if self._deferred and self._timer is None:
            self._timer = self._call_later(self.delay_s, self.flush)

    def flush(self) -> None:
        """Send every deferred suspend now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deferred, self._deferred = self._deferred, {}
        for pid, changes in deferred.items():
            self._dispatch(pid, changes)

    def forget(self, pid: int) -> None:
        """A process that went away: nothing more to send it."""
        self._deferred.pop(pid, None)

    def cancel(self) -> None:
        """Drop everything deferred (the daemon is stopping: agents resume their XQueues
        when its lease runs out, so a suspend sent now would only be undone)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deferred.clear()
