"""AWF, active window first: XQueues of processes owning an active window run first."""

from __future__ import annotations

from collections.abc import Sequence

from xschedd.policy.base import Operation, Policy, Status, run_only
from xschedd.policy.hints import Hint, WindowActiveHint
from xschedd.policy.priority import top_priority


class ActiveWindowFirst(Policy):
    """While an active-window process has a ready XQueue, only active processes run.

    Otherwise every XQueue is resumed (plain FCFS sharing). WindowActiveHint(pid, True)
    marks a process active and (pid, False) clears it; several processes may be active
    at once (XSched keeps one per display; our hint carries no display). The whole
    machine is one lane, as in XSched.
    """

    name = "AWF"

    def __init__(self) -> None:
        self._active: set[int] = set()

    def on_hint(self, hint: Hint) -> None:
        if isinstance(hint, WindowActiveHint):
            if hint.active:
                self._active.add(hint.pid)
            else:
                self._active.discard(hint.pid)

    def schedule(self, status: Status) -> Sequence[Operation]:
        return run_only(status, top_priority(status, lambda q: int(q.pid in self._active)))
