"""The policy contract: a status snapshot goes in, operations come out.

A policy is pure: no I/O, no threads, no clock of its own (time arrives as `Status.now`).
The same policy objects run in the daemon (global scheduler) and in an application's
local scheduler. A policy may keep state between calls (hints, accounting), and is used
by one thread at a time: its owner's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
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
    # True where `schedule` depends on nothing but the XQueues (ids, pids, devices), which
    # of them are ready, and the hints: no clock, no CPU nice, no suspended state. The
    # global scheduler may then write a decision it made before for the same state into
    # the suspend gates ahead of deciding again (xschedd.scheduler, "decision memo").
    readiness_only: ClassVar[bool] = False
    # True where decisions hand the device from some XQueues to others in turn (time
    # sharing): the global scheduler then sends the resumes first and the level-2/3
    # suspends a little later (xschedd.handover). Priority policies leave it False: an
    # urgent XQueue must not share the device with what it preempts.
    handover: ClassVar[bool] = False

    @abstractmethod
    def schedule(self, status: Status) -> Sequence[Operation]:
        """Decide which XQueues may run now."""

    def on_hint(self, hint: Hint) -> None:
        """Take a hint; hints a policy does not use are ignored."""


def run_only(status: Status, runnable: Iterable[int]) -> RunOnly:
    """Operations that resume exactly `runnable` and suspend every other XQueue."""
    return RunOnly(status.xqueues.keys(), set(runnable))


class RunOnly(Sequence[Operation]):
    """`run_only`'s operations: Resume for `runnable`, Suspend for every other id of
    `ids`, in id order, then the SetTimers appended. It reads as that list (iterate,
    index, compare with a list) and is built on first read: the global scheduler takes
    the sets themselves and diffs them in C, which at 1,000 XQueues is most of a decision.
    """

    __slots__ = ("_ops", "ids", "runnable", "timers")

    def __init__(self, ids: AbstractSet[int], runnable: AbstractSet[int]) -> None:
        self.ids = ids
        self.runnable = runnable
        self.timers: list[SetTimer] = []
        self._ops: list[Operation] | None = None

    def append(self, op: SetTimer) -> None:
        if not isinstance(op, SetTimer):
            raise TypeError(f"run_only's answer takes only SetTimer, not {type(op).__name__}")
        self.timers.append(op)
        self._ops = None

    def _list(self) -> list[Operation]:
        if self._ops is None:
            allowed = self.runnable
            self._ops = [Resume(i) if i in allowed else Suspend(i) for i in sorted(self.ids)]
            self._ops += self.timers
        return self._ops

    def __getitem__(self, index):  # type: ignore[override]
        return self._list()[index]

    def __len__(self) -> int:
        return len(self.ids) + len(self.timers)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._list())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, RunOnly)):
            return self._list() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  (mutable, like a list)

    def __repr__(self) -> str:
        return repr(self._list())
