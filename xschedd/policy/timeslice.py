"""What the time-sharing policies (UP, WRR, CFS, PUP, SPUP) share: turns, slices, the timer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xschedd.policy.base import Operation, Policy, SetTimer, Status, XQueueStatus, run_only
from xschedd.policy.hints import (
    TIMESLICE_DEFAULT_US,
    UTILIZATION_DEFAULT,
    Hint,
    TimesliceHint,
    UtilizationHint,
)


@dataclass(frozen=True)
class Turn:
    """The entity that holds a lane, and when its slice ends."""

    entity: int
    ends: float


class TimeSharing(Policy):
    """Gives each lane to one ready entity at a time, a time slice at a time.

    An *entity* is what takes turns: an XQueue by default, a process for PUP/SPUP (all its
    XQueues run together). A *lane* is what one turn occupies: the whole machine by
    default, one device for CFS. Subclasses choose who gets the next slice (`_pick`) and
    how long it is (`_slice_s`). A running entity keeps its lane until its slice ends or
    it goes idle; a lane with no ready entity resumes all its XQueues so the first to
    submit starts without delay. Entities of utilization 0 run only when no entity with a
    share is ready in their lane. XQueues for which `_may_run` is False are always
    suspended.
    """

    def __init__(self) -> None:
        self._utilization: dict[int, int] = {}
        self._timeslice_s = TIMESLICE_DEFAULT_US / 1e6
        self._turns: dict[str, Turn] = {}
        self._since = 0.0

    def utilization(self, entity: int) -> int:
        return self._utilization.get(entity, UTILIZATION_DEFAULT)

    def on_hint(self, hint: Hint) -> None:
        if isinstance(hint, UtilizationHint):
            self._utilization[hint.xqueue_id] = hint.utilization
        elif isinstance(hint, TimesliceHint):
            self._timeslice_s = hint.timeslice_us / 1e6

    def schedule(self, status: Status) -> Sequence[Operation]:
        now = status.now
        for turn in self._turns.values():
            self._charge(turn.entity, max(0.0, now - self._since))
        self._since = now
        self._tick(status)
        ready = self._ready_by_lane(status)
        self._observe(status, ready)
        turns: dict[str, Turn] = {}
        for lane, entities in ready.items():
            turn = self._turns.get(lane)
            if (
                turn is None
                or turn.entity not in entities
                or now >= turn.ends
                or not self._keeps_turn(turn.entity, entities)
            ):
                shared = [e for e in entities if self.utilization(e) > 0]
                entity = self._pick(shared or entities, turn.entity if turn else None)
                turn = Turn(entity, now + self._slice_s(entity))
            turns[lane] = turn
        self._turns = turns
        runnable = [
            q.xqueue_id
            for q in status.xqueues.values()
            if self._may_run(q)
            and (self._lane(q) not in turns or turns[self._lane(q)].entity == self._entity(q))
        ]
        ops = run_only(status, runnable)
        if turns:
            ops.append(SetTimer(min(turn.ends for turn in turns.values())))
        return ops

    def _ready_by_lane(self, status: Status) -> dict[str, list[int]]:
        lanes: dict[str, set[int]] = {}
        for q in status.xqueues.values():
            if q.ready and self._may_run(q):
                lanes.setdefault(self._lane(q), set()).add(self._entity(q))
        return {lane: sorted(entities) for lane, entities in sorted(lanes.items())}

    def _entity(self, xqueue: XQueueStatus) -> int:
        """What takes turns: the XQueue itself by default."""
        return xqueue.xqueue_id

    def _lane(self, xqueue: XQueueStatus) -> str:
        """Which independent turn an XQueue competes for: one for the machine by default."""
        return ""

    def _may_run(self, xqueue: XQueueStatus) -> bool:
        """Whether an XQueue may be resumed at all now (default: always)."""
        return True

    def _tick(self, status: Status) -> None:
        """See the time after charging, before anything else (default: nothing to do)."""

    def _charge(self, entity: int, elapsed_s: float) -> None:
        """Account `elapsed_s` of device time to `entity` (default: nothing to do)."""

    def _observe(self, status: Status, ready: dict[str, list[int]]) -> None:
        """See the ready entities of every lane before the picks (default: nothing to do)."""

    def _keeps_turn(self, holder: int, ready: list[int]) -> bool:
        """Whether `holder` may finish its slice though others are ready (default: yes)."""
        return True

    def _pick(self, candidates: list[int], previous: int | None) -> int:
        """The entity that gets the next slice; `previous` held the lane before."""
        raise NotImplementedError

    def _slice_s(self, entity: int) -> float:
        return self._timeslice_s
