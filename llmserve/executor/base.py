"""The executor interface: run one scheduled step, say how long it took and what it sampled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from llmserve.sched.output import SchedulerOutput


@dataclass(frozen=True)
class StepResult:
    """One executed step: its duration and a new token id for every sampling sequence."""

    duration_s: float
    sampled: Mapping[str, int]


class Executor(Protocol):
    """Runs a step: copies the swapped blocks the output names, computes the batch's KV
    and samples one token for each ScheduledSeq with `samples`. A real model executor
    (CuPy / NumPy, through an XQueue) implements the same call."""

    def execute(self, output: SchedulerOutput) -> StepResult: ...
