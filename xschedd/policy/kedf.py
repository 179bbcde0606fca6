"""KEDF, k earliest deadline first: the k ready XQueues with the earliest deadlines run."""

from __future__ import annotations

import math
from collections.abc import Sequence

from xschedd.policy.base import Operation, Policy, Status, XQueueStatus, run_only
from xschedd.policy.hints import DeadlineHint, Hint, KDeadlineHint


class KEarliestDeadlineFirst(Policy):
    """Rank ready XQueues by absolute deadline = `ready_since` + relative deadline; resume
    the first k (default 1, set by KDeadlineHint).

    Ready queues without a DeadlineHint rank after all those with one, in the order they
    became ready (ties: earlier ready, then lower id). While fewer than k queues are
    ready the idle ones stay resumed too, so a new task takes a free slot at once (the
    ready event that follows re-ranks). A ready queue with unknown `ready_since` counts
    as ready since now. The whole machine is one lane, as in XSched; no timer is needed
    since a deadline never moves while its queue stays ready.
    """

    name = "KEDF"

    def __init__(self) -> None:
        self._deadlines_s: dict[int, float] = {}
        self._k = 1

    @property
    def k(self) -> int:
        return self._k

    def on_hint(self, hint: Hint) -> None:
        if isinstance(hint, DeadlineHint):
            self._deadlines_s[hint.xqueue_id] = hint.deadline_us / 1e6
        elif isinstance(hint, KDeadlineHint):
            self._k = hint.k

    def deadline(self, q: XQueueStatus, now: float) -> float:
        """The absolute deadline of the task `q` holds (infinite without a DeadlineHint)."""
        relative = self._deadlines_s.get(q.xqueue_id)
        since = q.ready_since if q.ready_since is not None else now
        return math.inf if relative is None else since + relative

    def schedule(self, status: Status) -> Sequence[Operation]:
        now = status.now
        ready = [q for q in status.xqueues.values() if q.ready]
        ready.sort(
            key=lambda q: (
                self.deadline(q, now),
                q.ready_since if q.ready_since is not None else now,
                q.xqueue_id,
            )
        )
        chosen = [q.xqueue_id for q in ready[: self._k]]
        if len(ready) < self._k:
            chosen += [q.xqueue_id for q in status.xqueues.values() if not q.ready]
        return run_only(status, chosen)
