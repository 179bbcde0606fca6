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


# Anticipation (TimeSharing's docstring): the holder's usual gap is a moving average
# (this weight on the newest), and the lane waits twice that plus the slack, at most
# ANTICIPATION_MAX_S and a quarter of the slice.
GAP_WEIGHT = 0.25
ANTICIPATION_SLACK_S = 100e-6
ANTICIPATION_MAX_S = 1e-3


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

    Anticipation: an application that runs tasks back to back goes idle between two of
    them (it waits for one task, then submits the next), often for a fraction of a
    millisecond. Handing the lane over at each of those gaps makes a switch per task
    instead of per slice, and each switch costs the device what the suspended queue
    still has in flight and the resumed one's ramp. So the policy learns each entity's
    gap (idle to ready again; a moving average of the last few, a gap counted at most as
    one slice), and when the holder goes idle within its slice, keeps the lane for it
    for twice its usual gap plus ANTICIPATION_SLACK_S, if that is at most
    `_hold_cap_s()` (a quarter of the slice, at most ANTICIPATION_MAX_S): a holder back
    within that time goes on with its slice, one that stays away loses the lane when it
    runs out. An entity whose gaps are long (periodic tasks) or not yet known is not
    waited for. The holder is charged for the time held, as for the rest of its turn.
    """

    handover = True

    def __init__(self) -> None:
        self._utilization: dict[int, int] = {}
        self._timeslice_s = TIMESLICE_DEFAULT_US / 1e6
        self._turns: dict[str, Turn] = {}
        self._since = 0.0
        # readiness as of the last call, when each idle entity went idle, its usual gap
        self._was_ready: set[int] = set()
        self._idle_at: dict[int, float] = {}
        self._gap_s: dict[int, float] = {}

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
        lanes = {self._entity(q): self._lane(q) for q in status.xqueues.values()}  # every entity's
        self._observe(status, ready, lanes)
        self._track_gaps(status, ready, lanes)
        turns: dict[str, Turn] = {}
        wakes: list[float] = []
        for lane in sorted(set(ready) | set(self._turns)):
            entities = ready.get(lane, [])
            turn = self._turns.get(lane)
            held_until = self._held_until(turn, entities, now) if turn is not None else None
            if held_until is not None:
                turns[lane] = turn
                wakes.append(held_until)
                continue
            if not entities:
                continue
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
            wakes.append(turn.ends)
        self._turns = turns
        runnable = [
            q.xqueue_id
            for q in status.xqueues.values()
            if self._may_run(q)
            and (self._lane(q) not in turns or turns[self._lane(q)].entity == self._entity(q))
        ]
        ops = run_only(status, runnable)
        if wakes:
            ops.append(SetTimer(min(wakes)))
        return ops

    def _track_gaps(
        self, status: Status, ready: dict[str, list[int]], lanes: dict[int, str]
    ) -> None:
        """Note which entities went idle now, and the gap of those ready again; forget
        entities that are gone (`lanes`: every entity's lane)."""
        now = status.now
        now_ready = {e for entities in ready.values() for e in entities}
        for e in now_ready - self._was_ready:
            idle_at = self._idle_at.pop(e, None)
            if idle_at is not None:
                gap = min(max(0.0, now - idle_at), self._timeslice_s)
                last = self._gap_s.get(e)
                self._gap_s[e] = gap if last is None else last + GAP_WEIGHT * (gap - last)
        for e in self._was_ready - now_ready:
            self._idle_at[e] = now
        self._was_ready = now_ready
        for table in (self._idle_at, self._gap_s):
            for gone in set(table) - lanes.keys():
                del table[gone]

    def _hold_cap_s(self) -> float:
        """The longest a lane waits for its idle holder."""
        return min(ANTICIPATION_MAX_S, self._timeslice_s / 4)

    def _hold_s(self, entity: int) -> float:
        """How long to keep the lane for `entity` once idle: 0 unless its gaps are short."""
        gap = self._gap_s.get(entity)
        if gap is None:
            return 0.0
        hold = 2 * gap + ANTICIPATION_SLACK_S
        return hold if hold <= self._hold_cap_s() else 0.0

    def _held_until(self, turn: Turn, ready: list[int], now: float) -> float | None:
        """Until when `turn`'s idle holder keeps its lane (None: it does not)."""
        holder = turn.entity
        idle_at = self._idle_at.get(holder)
        if holder in ready or idle_at is None or now >= turn.ends:
            return None
        until = min(turn.ends, idle_at + self._hold_s(holder))
        if now >= until or (ready and not self._keeps_turn(holder, ready)):
            return None
        return until

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

    def _observe(self, status: Status, ready: dict[str, list[int]], lanes: dict[int, str]) -> None:
        """See the ready entities of every lane before the picks (`lanes`: every known
        entity's lane; default: nothing to do)."""

    def _keeps_turn(self, holder: int, ready: list[int]) -> bool:
        """Whether `holder` may finish its slice though others are ready (default: yes)."""
        return True

    def _pick(self, candidates: list[int], previous: int | None) -> int:
        """The entity that gets the next slice; `previous` held the lane before."""
        raise NotImplementedError

    def _slice_s(self, entity: int) -> float:
        return self._timeslice_s
