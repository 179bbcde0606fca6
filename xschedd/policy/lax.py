"""LAX, laxity-based: a queue turns critical once its laxity since it became ready runs out."""

from __future__ import annotations

from collections.abc import Sequence

from xschedd.policy.base import Operation, Policy, SetTimer, Status, XQueueStatus, run_only
from xschedd.policy.hints import PRIORITY_DEFAULT, Hint, LaxityHint
from xschedd.policy.priority import top_priority


class Laxity(Policy):
    """HPF over effective priorities: `lax_priority` for `laxity_us` after a queue became
    ready (`XQueueStatus.ready_since`), `crit_priority` after that.

    Idle queues count at their lax priority; queues without a LaxityHint at
    PRIORITY_DEFAULT; a ready queue with unknown `ready_since` is taken as ready since now.
    A timer is set for the earliest laxity expiry still ahead that changes a priority.
    The whole machine is one lane, as in XSched; PRIORITY_NEVER never runs.
    """

    name = "LAX"

    def __init__(self) -> None:
        self._hints: dict[int, LaxityHint] = {}

    def on_hint(self, hint: Hint) -> None:
        if isinstance(hint, LaxityHint):
            self._hints[hint.xqueue_id] = hint

    def _expiry(self, q: XQueueStatus, now: float) -> float | None:
        hint = self._hints.get(q.xqueue_id)
        if hint is None or not q.ready or hint.crit_priority == hint.lax_priority:
            return None  # nothing changes when it expires
        since = q.ready_since if q.ready_since is not None else now
        return since + hint.laxity_us / 1e6

    def schedule(self, status: Status) -> Sequence[Operation]:
        now = status.now

        def priority(q: XQueueStatus) -> int:
            hint = self._hints.get(q.xqueue_id)
            if hint is None:
                return PRIORITY_DEFAULT
            expiry = self._expiry(q, now)
            return hint.crit_priority if expiry is not None and now >= expiry else hint.lax_priority

        ops = run_only(status, top_priority(status, priority))
        ahead = [
            at
            for q in status.xqueues.values()
            if (at := self._expiry(q, now)) is not None and at > now
        ]
        if ahead:
            ops.append(SetTimer(min(ahead)))
        return ops
