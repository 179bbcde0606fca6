"""Change notification for WatchStatus: each watcher collects what changed since it last looked.

Owned by the daemon's event loop. The scheduler marks changes; a watcher's stream wakes,
waits out its minimum interval (coalescing bursts) and sends one delta. XQueue shares move
without events (a queue that stopped running fades out of its window), so each stream
also re-sends, now and then, the XQueues whose share drifted from what it last sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

SHARE_REFRESH_S = 1.0
SHARE_STEP = 0.005  # a drift smaller than half a percentage point is not worth a message


@dataclass(eq=False)
class Changes:
    xqueues: set[int] = field(default_factory=set)
    removed_xqueues: set[int] = field(default_factory=set)
    processes: set[int] = field(default_factory=set)
    removed_pids: set[int] = field(default_factory=set)
    policy: bool = False

    def __bool__(self) -> bool:
        return bool(
            self.xqueues or self.removed_xqueues or self.processes or self.removed_pids or self.policy
        )


class Watcher:
    def __init__(self) -> None:
        self._changes = Changes()
        self._wake = asyncio.Event()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait for a change (True) or until `timeout` seconds have passed (False)."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def take(self) -> Changes:
        changes, self._changes = self._changes, Changes()
        self._wake.clear()
        return changes


class _Shared(Protocol):
    def share(self) -> float: ...


class ShareTracker:
    """The shares one stream last sent, to find the XQueues whose share drifted since."""

    def __init__(self) -> None:
        self._sent: dict[int, float] = {}

    def sent(self, shares: Iterable[tuple[int, float]], removed: Iterable[int] = ()) -> None:
        self._sent.update(shares)
        for xqueue_id in removed:
            self._sent.pop(xqueue_id, None)

    def drifted(self, records: Mapping[int, _Shared]) -> set[int]:
        return {
            xqueue_id for xqueue_id, rec in records.items()
            if abs(rec.share() - self._sent.get(xqueue_id, 0.0)) >= SHARE_STEP
        }


class StatusBus:
    def __init__(self) -> None:
        self._watchers: set[Watcher] = set()

    def subscribe(self) -> Watcher:
        watcher = Watcher()
        self._watchers.add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def _mark(self, apply) -> None:
        for w in self._watchers:
            apply(w._changes)
            w._wake.set()

    def xqueue_changed(self, xqueue_id: int) -> None:
        if self._watchers:
            self._mark(lambda c: (c.xqueues.add(xqueue_id), c.removed_xqueues.discard(xqueue_id)))

    def xqueue_removed(self, xqueue_id: int) -> None:
        if self._watchers:
            self._mark(lambda c: (c.removed_xqueues.add(xqueue_id), c.xqueues.discard(xqueue_id)))

    def process_changed(self, pid: int) -> None:
        if self._watchers:
            self._mark(lambda c: (c.processes.add(pid), c.removed_pids.discard(pid)))

    def process_removed(self, pid: int) -> None:
        if self._watchers:
            self._mark(lambda c: (c.removed_pids.add(pid), c.processes.discard(pid)))

    def policy_changed(self) -> None:
        if self._watchers:
            self._mark(lambda c: setattr(c, "policy", True))
