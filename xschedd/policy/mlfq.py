"""MLFQ, multi-level feedback queue: short bursts stay on top, long runners sink, boosts lift."""

from __future__ import annotations

from collections.abc import Sequence

from xschedd.policy.base import Operation, Policy, SetTimer, Status, run_only
from xschedd.policy.hints import TIMESLICE_DEFAULT_US, Hint, TimesliceHint

LEVELS_DEFAULT = 4
BOOST_PERIOD_S_DEFAULT = 0.1  # XSched's MLFQ recovers priority after 100 ms
_EPSILON_S = 1e-9  # timers land on float sums; within this an allotment counts as used


class MultiLevelFeedbackQueue(Policy):
    """Per device, the ready XQueue of the highest level (0 = top) runs; FIFO within a level.

    A new XQueue starts at level 0. Level L allots `timeslice * 2**L` of device time
    (TimesliceHint, default 5 ms -> 5, 10, 20, 40 ms); once a queue has used its allotment
    it drops one level and goes to the back of it. The allotment counts across idle
    periods, so submitting in short bursts cannot game the top level. A queue that turns
    ready again, or is demoted, goes to the back of its level; a higher-level queue that
    turns ready preempts at once. Every `boost_period_s` all queues return to level 0, so
    none starves. Timers fire at the next allotment end or boost. XSched's MLFQ uses a
    per-queue "soft priority recovery" instead of the global boost; priority hints are
    ignored, as in XSched.
    """

    name = "MLFQ"

    def __init__(
        self, levels: int = LEVELS_DEFAULT, boost_period_s: float = BOOST_PERIOD_S_DEFAULT
    ) -> None:
        self._bottom = max(1, levels) - 1
        self._boost_period_s = boost_period_s
        self._timeslice_s = TIMESLICE_DEFAULT_US / 1e6
        self._level: dict[int, int] = {}
        self._used_s: dict[int, float] = {}
        self._order: dict[int, int] = {}  # place in line within the level: lower goes first
        self._arrivals = 0
        self._running: set[int] = set()
        self._was_ready: set[int] = set()
        self._since: float | None = None
        self._next_boost: float | None = None

    def level(self, xqueue_id: int) -> int:
        return self._level.get(xqueue_id, 0)

    def allotment_s(self, level: int) -> float:
        return self._timeslice_s * 2**level

    def on_hint(self, hint: Hint) -> None:
        if isinstance(hint, TimesliceHint):
            self._timeslice_s = hint.timeslice_us / 1e6

    def _to_back(self, xqueue_id: int) -> None:
        self._arrivals += 1
        self._order[xqueue_id] = self._arrivals

    def schedule(self, status: Status) -> Sequence[Operation]:
        now = status.now
        elapsed = 0.0 if self._since is None else max(0.0, now - self._since)
        for xq in self._running & set(self._used_s):
            self._used_s[xq] += elapsed
        self._since = now
        for gone in set(self._level) - set(status.xqueues):
            del self._level[gone], self._used_s[gone], self._order[gone]
        if self._next_boost is None or now >= self._next_boost:
            if self._next_boost is not None:
                self._level = dict.fromkeys(self._level, 0)
                self._used_s = dict.fromkeys(self._used_s, 0.0)
            self._next_boost = now + self._boost_period_s
        ready = {q.xqueue_id for q in status.xqueues.values() if q.ready}
        for xq in sorted(status.xqueues):
            if xq not in self._level:
                self._level[xq], self._used_s[xq] = 0, 0.0
                self._to_back(xq)
            elif xq in ready and xq not in self._was_ready:
                self._to_back(xq)
            if self._used_s[xq] >= self.allotment_s(self._level[xq]) - _EPSILON_S:
                self._level[xq] = min(self._level[xq] + 1, self._bottom)
                self._used_s[xq] = 0.0
                self._to_back(xq)
        self._was_ready = ready

        best: dict[str, int] = {}
        for q in status.xqueues.values():
            if q.ready:
                rank = (self._level[q.xqueue_id], self._order[q.xqueue_id])
                held = best.get(q.device)
                if held is None or rank < (self._level[held], self._order[held]):
                    best[q.device] = q.xqueue_id
        self._running = set(best.values())
        idle_lanes = [q.xqueue_id for q in status.xqueues.values() if q.device not in best]
        ops = run_only(status, [*best.values(), *idle_lanes])
        if best:
            ends = [
                now + self.allotment_s(self._level[xq]) - self._used_s[xq] for xq in best.values()
            ]
            ops.append(SetTimer(min([*ends, self._next_boost])))
        return ops
