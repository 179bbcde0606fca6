"""Make before break: when a time-sharing decision hands the device from some XQueues to
others, the resumes go out at once and the suspends of level-2/3 XQueues `HANDOVER_S`
later. The outgoing XQueues stop launching at once all the same (the daemon writes
their suspend gates before any operation travels, xschedd.gates); what the delay spares
is the flush of the work they have in flight. An XQueue with no gate launches until its
suspend arrives, so its suspend waits only `UNGATED_HANDOVER_S`.

Why, measured on the H100 without MPS (two processes, UP 75/25, 8-layer stacks at level
2, about 90 hand-overs a second): sent together, 170 tasks/s in all; with the suspends
0.3 ms behind the resumes, 231 (level 1: 282). A level-2 suspend stops its process's
work within tens of microseconds, often before the other process's resume has reached
it, and a GPU left with one parked or napping context and another that only just got
work back gives the second its time slice late: about 2 ms per hand-over went idle. With
the resume first, the incoming process has work on the GPU before the outgoing one
stops, as at level 1, where the work still in flight covers the switch.

Why 3 ms and not 0.3: a flush at 0.3 ms caught the stack's short launches
(GEMMs of ~0.2 ms, eight in flight) mid-way, and a flushed short launch waits in a
napping kernel (hal.cuda.gate: it naps rather than parks, PARK_MIN_US), which keeps its
context in the GPU's time slices through the whole of the other process's turn. 3 ms
lets such work drain first, as it does at level 1; what is still in flight then flushes
(long launches park, with nothing on the GPU). H100, UP 75/25, level 2 threshold 8, two
rounds each (docs/h100-benchmarks.md, "Hand-overs that let short work drain"): the stack
0.819 -> 0.909 of one process's throughput at 5 ms slices and 0.830 -> 0.923 at 20 ms
(level 1 in the same run: 0.928-0.937); 1 ms spin commands 0.913 / 0.903 and 0.923 /
0.931, as before; 30 ms gave what 3 ms did.

The deferred suspends are exact: a later decision for the same process sends what is
still deferred first (less what it changes itself: a suspend undone by a resume is
dropped, as if it had never been decided), so no operation is lost, reordered against a
newer one for its XQueue, or sent twice; a process that goes away takes its own along.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

# how long a hand-over defers the suspend of a level-2/3 XQueue whose suspend gate stops
# its launches at once (above), and of one without a gate (an agent over TCP, or a page
# out of slots), which launches until its suspend arrives: there only the make before break
UNGATED_HANDOVER_S = 0.3e-3
HANDOVER_S = 3e-3

# [(xqueue_id, suspend), ...] for one process, as xschedd.scheduler.Dispatch takes them
Changes = list[tuple[int, bool]]


class Handover:
    """Sends one decision's operations through `dispatch`, deferring some suspends (above).

    `call_later(delay, fn)` returns something with `cancel()` (an asyncio handle)."""

    def __init__(self, dispatch: Callable[[int, Changes], None],
                 call_later: Callable[[float, Callable[[], None]], Any]) -> None:  # fmt: skip
        self._dispatch = dispatch
        self._call_later = call_later
        self._deferred: dict[float, dict[int, Changes]] = {}  # delay -> pid -> its suspends
        self._timers: dict[float, Any] = {}

    @property
    def deferred(self) -> dict[int, Changes]:
        """pid -> its suspends not sent yet, the shorter delays' first (a copy)."""
        merged: dict[int, Changes] = {}
        for delay in sorted(self._deferred):
            for pid, changes in self._deferred[delay].items():
                merged.setdefault(pid, []).extend(changes)
        return merged

    def send(self, by_pid: Iterable[tuple[int, Changes]], delay_of: Callable[[int], float | None]) -> None:
        """Dispatch one decision. Where it resumes anything, the suspend of an XQueue waits
        `delay_of(xqueue_id)` seconds (None: it goes now); processes are sent to in the
        order given, each process's changes in one call."""
        by_pid = list(by_pid)
        handing_over = any(not suspend for _, changes in by_pid for _, suspend in changes)
        for pid, changes in by_pid:
            touched = {xqueue_id for xqueue_id, _ in changes}
            now: Changes = []
            for delay in sorted(self._deferred):  # what was deferred goes first
                waiting = self._deferred[delay]
                earlier = [change for change in waiting.pop(pid, ()) if change[0] not in touched]
                if earlier and handing_over:
                    waiting[pid] = earlier
                else:
                    now.extend(earlier)
            for change in changes:
                delay = delay_of(change[0]) if handing_over and change[1] else None
                if delay is None:
                    now.append(change)
                else:
                    self._deferred.setdefault(delay, {}).setdefault(pid, []).append(change)
            if now:
                self._dispatch(pid, now)
        for delay, waiting in self._deferred.items():
            if waiting and delay not in self._timers:
                self._timers[delay] = self._call_later(delay, lambda delay=delay: self.flush(delay))

    def flush(self, delay: float | None = None) -> None:
        """Send the suspends deferred by `delay` now (None: every deferred suspend)."""
        for d in [delay] if delay is not None else sorted(self._deferred):
            timer = self._timers.pop(d, None)
            if timer is not None:
                timer.cancel()
            for pid, changes in self._deferred.pop(d, {}).items():
                self._dispatch(pid, changes)

    def forget(self, pid: int) -> None:
        """A process that went away: nothing more to send it."""
        for waiting in self._deferred.values():
            waiting.pop(pid, None)

    def cancel(self) -> None:
        """Drop everything deferred (the daemon is stopping: agents resume their XQueues
        when its lease runs out, so a suspend sent now would only be undone)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._deferred.clear()
