"""The hints a scheduler has been given, kept so they can be replayed to a new policy.

Hints of one kind for one target replace each other (a second priority for the same
XQueue wins). Both the local scheduler and the daemon keep their hints here, so a policy
switched in online learns everything its predecessor was told. Pure; not thread-safe:
its owner serializes access.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from xschedd.policy.base import Policy
from xschedd.policy.hints import Hint

HintKey = tuple[str, int | None]


def hint_key(hint: Hint) -> HintKey:
    """Hints of one type for one target (an XQueue, a process, or global) replace each other."""
    target = getattr(hint, "xqueue_id", None)
    if target is None:
        target = getattr(hint, "pid", None)
    return (type(hint).__name__, target)


def hint_xqueue(hint: Hint) -> int | None:
    """The XQueue a hint is about, or None for process-wide and global hints."""
    return getattr(hint, "xqueue_id", None)


def hint_pid(hint: Hint) -> int | None:
    """The process a hint is about: its own pid field, else its XQueue's (id = pid << 32 | n)."""
    pid = getattr(hint, "pid", None)
    if pid is not None:
        return pid
    xq = hint_xqueue(hint)
    return None if xq is None else xq >> 32


class HintBook:
    """The latest hint per (kind, target), in the order they were first given."""

    def __init__(self, hints: Iterable[Hint] = ()) -> None:
        self._hints: dict[HintKey, Hint] = {}
        for hint in hints:
            self.put(hint)

    def put(self, hint: Hint) -> None:
        self._hints[hint_key(hint)] = hint

    def has(self, hint: Hint) -> bool:
        """Whether a hint of this kind for this target is already kept."""
        return hint_key(hint) in self._hints

    def get(self, key: HintKey) -> Hint | None:
        return self._hints.get(key)

    def forget_pid(self, pid: int) -> list[Hint]:
        """Drop the hints about process `pid` and its XQueues; return them."""
        gone = [k for k, h in self._hints.items() if hint_pid(h) == pid]
        return [self._hints.pop(k) for k in gone]

    def replay(self, policy: Policy) -> None:
        """Give `policy` every hint kept, oldest first."""
        for hint in self._hints.values():
            policy.on_hint(hint)

    def __iter__(self) -> Iterator[Hint]:
        return iter(list(self._hints.values()))

    def __len__(self) -> int:
        return len(self._hints)
