"""What the time-sharing policies (UP, WRR) have in common: shares, slices and the timer."""

from __future__ import annotations

from xschedd.policy.base import Operation, Policy, SetTimer, Status, run_only
from xschedd.policy.hints import (
    TIMESLICE_DEFAULT_US,
    UTILIZATION_DEFAULT,
    Hint,
    TimesliceHint,
    UtilizationHint,
)


class TimeSharing(Policy):
    """Gives the device to one ready XQueue at a time, a time slice at a time.

    Subclasses choose who gets the next slice (`_pick`) and how long it is (`_slice_s`).
    A running queue keeps the device until its slice ends or it goes idle; when no queue
    is ready, every queue is resumed so the first to submit starts without delay.
    Queues of utilization 0 run only when no queue with a share is ready.
    """

    def __init__(self) -> None:
        self._utilization: dict[int, int] = {}
        self._timeslice_s = TIMESLICE_DEFAULT_US / 1e6
        self._current: int | None = None
        self._since = 0.0
        self._slice_end = 0.0

    def utilization(self, xqueue_id: int) -> int:
        return self._utilization.get(xqueue_id, UTILIZATION_DEFAULT)

    def on_hint(self, hint: Hint) -> None:
        if isinstance(hint, UtilizationHint):
            self._utilization[hint.xqueue_id] = hint.utilization
        elif isinstance(hint, TimesliceHint):
            self._timeslice_s = hint.timeslice_us / 1e6

    def schedule(self, status: Status) -> list[Operation]:
        now = status.now
        if self._current is not None:
            self._charge(self._current, max(0.0, now - self._since))
        self._since = now
        ready = sorted(q.xqueue_id for q in status.xqueues.values() if q.ready)
        self._observe(status, ready)
        if not ready:
            self._current = None
            return run_only(status, status.xqueues)
        if self._current not in ready or now >= self._slice_end:
            shared = [xq for xq in ready if self.utilization(xq) > 0]
            self._current = self._pick(shared or ready)
            self._slice_end = now + self._slice_s(self._current)
        return [*run_only(status, [self._current]), SetTimer(self._slice_end)]

    def _charge(self, xqueue_id: int, elapsed_s: float) -> None:
        """Account `elapsed_s` of device time to `xqueue_id` (default: nothing to do)."""

    def _observe(self, status: Status, ready: list[int]) -> None:
        """See the ready set before a pick (default: nothing to do)."""

    def _pick(self, candidates: list[int]) -> int:
        raise NotImplementedError

    def _slice_s(self, xqueue_id: int) -> float:
        return self._timeslice_s
