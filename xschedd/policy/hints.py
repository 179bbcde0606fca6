"""Scheduling hints and their ranges: the one home for both, as XSched defines them.

Every entry point (env vars, the CLI, the daemon, the console) validates through the
constructors here, so a bad value is refused with the same message everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from xschedd.policy.errors import HintError

PRIORITY_NEVER = -256  # a queue with this priority never runs (XSched's PRIORITY_NO_EXECUTE)
PRIORITY_MIN = -255
PRIORITY_MAX = 255
PRIORITY_DEFAULT = 0
UTILIZATION_MIN = 0
UTILIZATION_MAX = 100
UTILIZATION_DEFAULT = 100
TIMESLICE_MIN_US = 100
TIMESLICE_MAX_US = 100_000
TIMESLICE_DEFAULT_US = 5_000
INT64_MAX = 2**63 - 1


def check_range(what: str, value: int, low: int, high: int) -> int:
    """Return `value` if it is an int in [low, high], else raise HintError naming it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise HintError(f"{what} must be an integer in [{low}, {high}], got {value!r}")
    if not low <= value <= high:
        raise HintError(f"{what} {value} is out of range [{low}, {high}]")
    return value


@dataclass(frozen=True)
class PriorityHint:
    """Priority of one XQueue: bigger runs first; PRIORITY_NEVER means never run."""

    xqueue_id: int
    priority: int

    def __post_init__(self) -> None:
        check_range("priority", self.priority, PRIORITY_NEVER, PRIORITY_MAX)


@dataclass(frozen=True)
class UtilizationHint:
    """Share of device time, in percent, that UP-style policies give one XQueue."""

    xqueue_id: int
    utilization: int

    def __post_init__(self) -> None:
        check_range("utilization", self.utilization, UTILIZATION_MIN, UTILIZATION_MAX)


@dataclass(frozen=True)
class ProcessUtilizationHint:
    """Share of device time, in percent, that PUP and SPUP give process `pid` (all its XQueues)."""

    pid: int
    utilization: int

    def __post_init__(self) -> None:
        check_range("pid", self.pid, 1, 2**31 - 1)
        check_range("utilization", self.utilization, UTILIZATION_MIN, UTILIZATION_MAX)


@dataclass(frozen=True)
class TimesliceHint:
    """The time slice, in microseconds, of the time-sharing policies (global, as in XSched)."""

    timeslice_us: int

    def __post_init__(self) -> None:
        check_range("timeslice_us", self.timeslice_us, TIMESLICE_MIN_US, TIMESLICE_MAX_US)


@dataclass(frozen=True)
class DeadlineHint:
    """Relative deadline of each task of one XQueue, in microseconds."""

    xqueue_id: int
    deadline_us: int

    def __post_init__(self) -> None:
        check_range("deadline_us", self.deadline_us, 1, INT64_MAX)


@dataclass(frozen=True)
class KDeadlineHint:
    """How many earliest-deadline queues KEDF lets run at once."""

    k: int

    def __post_init__(self) -> None:
        check_range("k", self.k, 1, INT64_MAX)


@dataclass(frozen=True)
class LaxityHint:
    """LAX: run at `lax_priority` until `laxity_us` before the deadline, then `crit_priority`."""

    xqueue_id: int
    laxity_us: int
    lax_priority: int = PRIORITY_DEFAULT
    crit_priority: int = PRIORITY_DEFAULT

    def __post_init__(self) -> None:
        check_range("laxity_us", self.laxity_us, 1, INT64_MAX)
        check_range("lax_priority", self.lax_priority, PRIORITY_NEVER, PRIORITY_MAX)
        check_range("crit_priority", self.crit_priority, PRIORITY_NEVER, PRIORITY_MAX)


@dataclass(frozen=True)
class WindowActiveHint:
    """AWF: whether the process `pid` owns the active (focused) window."""

    pid: int
    active: bool

    def __post_init__(self) -> None:
        check_range("pid", self.pid, 1, 2**31 - 1)


Hint = Union[
    PriorityHint,
    UtilizationHint,
    ProcessUtilizationHint,
    TimesliceHint,
    DeadlineHint,
    KDeadlineHint,
    LaxityHint,
    WindowActiveHint,
]
