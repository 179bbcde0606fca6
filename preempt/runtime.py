"""The process runtime: configuration from the environment, the scheduler, XQueue creation."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from hal import Clock, HwQueue, default_clock
from preempt.config import Config, SchedulerKind, load_config
from preempt.scheduler import LocalScheduler
from preempt.xqueue import XQueue
from xschedd.policy import make_policy
from xschedd.policy import hints as H

if TYPE_CHECKING:
    from preempt.agent import Agent


class Runtime:
    """What XSched's environment variables set up in one process.

    `create_xqueue` makes an XQueue with the configured defaults (XSCHED_AUTO_XQUEUE_*),
    overridable per queue, and hands its hints to the scheduler. `wrap` follows
    XSCHED_AUTO_XQUEUE: an XQueue around a hardware queue when ON, the queue itself when OFF.
    """

    def __init__(self, config: Config | None = None, clock: Clock | None = None) -> None:
        self.config = config or load_config()
        self.clock = clock or default_clock()
        self.scheduler: LocalScheduler | Agent | None = None
        if self.config.scheduler is SchedulerKind.GLB:
            from preempt.agent import Agent, agent_config  # grpc is needed only here

            self.scheduler = Agent(agent_config())
        if self.config.scheduler is SchedulerKind.LCL:
            self.scheduler = LocalScheduler(make_policy(self.config.policy or "HPF"), self.clock)

    def create_xqueue(
        self,
        hwq: HwQueue,
        *,
        name: str = "",
        level: int | None = None,
        threshold: int | None = None,
        batch_size: int | None = None,
        priority: int | None = None,
        utilization: int | None = None,
        timeslice_us: int | None = None,
        deadline_us: int | None = None,
        laxity_us: int | None = None,
    ) -> XQueue:
        d = self.config.defaults
        threshold = d.threshold if threshold is None else threshold
        if batch_size is None:
            batch_size = min(d.batch_size, threshold) if isinstance(threshold, int) else None
        xq = XQueue(
            hwq,
            level=d.level if level is None else level,
            threshold=threshold,
            batch_size=batch_size,
            name=name,
        )
        xq.idle_news_delay_s = d.idle_delay_us / 1e6
        hints: list[H.Hint] = [
            H.PriorityHint(xq.id, d.priority if priority is None else priority),
            H.UtilizationHint(xq.id, d.utilization if utilization is None else utilization),
        ]
        if timeslice_us is not None or d.timeslice_us != H.TIMESLICE_DEFAULT_US:
            hints.append(H.TimesliceHint(d.timeslice_us if timeslice_us is None else timeslice_us))
        deadline = d.deadline_us if deadline_us is None else deadline_us
        if deadline is not None:
            hints.append(H.DeadlineHint(xq.id, deadline))
        laxity = d.laxity_us if laxity_us is None else laxity_us
        if laxity is not None:
            hints.append(H.LaxityHint(xq.id, laxity, H.PRIORITY_DEFAULT, hints[0].priority))
        hwq.set_priority(hints[0].priority)  # where the hardware has priorities (CUDA streams)
        if self.scheduler is not None:
            self.scheduler.add(xq, hints)
        return xq

    def wrap(self, hwq: HwQueue, **params: int) -> XQueue | HwQueue:
        return self.create_xqueue(hwq, **params) if self.config.auto_xqueue else hwq


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process's runtime, made from the environment on first use (may raise ConfigError)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime()
        return _runtime
