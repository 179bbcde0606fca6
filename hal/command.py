"""Preemption levels and the command record that hardware queues execute."""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Level(enum.IntEnum):
    """XSched's preemption levels: what a suspend can stop."""

    BLOCK = 1  # pending commands (not yet launched)
    DEACTIVATE = 2  # + launched commands not yet running
    INTERRUPT = 3  # + the running command


_ids = itertools.count(1)


@dataclass(eq=False)
class HwCommand:
    """One command for a hardware queue.

    `duration_us` is how long it runs on a simulated device; `payload` is real work (a
    callable) whose return value becomes `result` once the command completes on the
    device. Commands complete in the order their queue launched them.
    """

    duration_us: float = 0.0
    payload: Callable[[], Any] | None = None
    name: str = ""
    id: int = field(default_factory=lambda: next(_ids))
    result: Any = None
    error: BaseException | None = None

    def run_payload(self) -> None:
        """Run the payload once, keeping its result or its exception."""
        if self.payload is None:
            return
        try:
            self.result = self.payload()
        except BaseException as exc:  # noqa: BLE001 - the owner re-raises it on wait()
            self.error = exc
