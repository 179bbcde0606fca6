"""The policy contract: a status snapshot goes in, operations come out.

A policy is pure: no I/O, no threads, no clock of its own (time arrives as `Status.now`).
The same policy objects run in the daemon (global scheduler) and in an application's
local scheduler. A policy may keep state between calls (hints, accounting), and is used
by one thread at a time: its owner's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Union

from xschedd.policy.hints import Hint


@dataclass(frozen=True)
class XQueueStatus:
    """What a scheduler knows about one XQueue.

    `ready` is True while the XQueue holds commands (pending or in flight); `suspended`
    says whether it is currently suspended.
    """

    xqueue_id: int
    pid: int = 0
    device: str = ""
    ready: bool = False
    suspended: bool = False
    ready_since: float | None = None  # Status.now-clock time it last became ready


@dataclass(frozen=True)
class ProcessStatus:
    """What a scheduler knows about one process that owns XQueues."""

    pid: int
    nice: int = 0
    name: str = ""


@dataclass(frozen=True)
class Status:
    """A snapshot handed to `Policy.schedule`. `now` is in seconds on the scheduler's clock."""

    now: float
    xqueues: Mapping[int, XQueueStatus] = field(default_factory=dict)
    processes: Mapping[int, ProcessStatus] = field(default_factory=dict)


@dataclass(frozen=True)
class Suspend:
    xqueue_id: int


@dataclass(frozen=True)
class Resume:
    xqueue_id: int


@dataclass(frozen=True)
class SetTimer:
    """Ask the scheduler to call `schedule` again at `at` (seconds, scheduler clock).

    A scheduler keeps one timer: a later SetTimer replaces an earlier one.
    """

    at: float


Operation = Union[Suspend, Resume, SetTimer]


class Policy(ABC):
    """A scheduling policy: `schedule(status) -> operations` plus `on_hint(hint)`.

    Contract: every call of `schedule` returns a Suspend or Resume for every XQueue in
    the status, so that switching from one policy to another never strands a queue.
    """

    name: ClassVar[str]

    @abstractmethod
    def schedule(self, status: Status) -> list[Operation]:
        """Decide which XQueues may run now."""

    def on_hint(self, hint: Hint) -> None:
        """Take a hint; hints a policy does not use are ignored."""


def run_only(status: Status, runnable: Iterable[int]) -> list[Operation]:
    """Operations that resume exactly `runnable` and suspend every other XQueue."""
    allowed = set(runnable)
    return [
        Resume(xq_id) if xq_id in allowed else Suspend(xq_id) for xq_id in sorted(status.xqueues)
    ]
