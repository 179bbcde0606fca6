"""CpuHwQueue: a hardware queue of the CPU device (levels 1 and 2)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from hal.command import HwCommand, Level
from hal.errors import HalError
from hal.hwqueue import CompletionCallback, HwQueue

if TYPE_CHECKING:  # the device creates its queues: no import the other way at run time
    from hal.cpu.device import CpuDevice


class CpuHwQueue(HwQueue):
    """Commands run on the CPU device's worker in launch order; a command's payload runs
    when the device starts it, and its completion callback follows on the worker thread.
    `deactivate` keeps launched commands from starting (the running one completes)."""

    max_level = Level.DEACTIVATE
    cheap_launch = True  # a put on the worker's queue

    def __init__(self, device: CpuDevice) -> None:
        self.device = device
        self.clock = device.clock
        self.device_name = device.name
        self._cond = threading.Condition()
        self._callbacks: dict[int, CompletionCallback | None] = {}
        self._closed = False
        self.qid = device.add_queue(self._on_device_complete)

    def launch(self, cmd: HwCommand, on_complete: CompletionCallback | None = None) -> None:
        with self._cond:
            if self._closed:
                raise HalError(f"launch on a closed hardware queue of {self.device_name!r}")
            self._callbacks[cmd.id] = on_complete
        try:
            self.device.launch(self.qid, cmd)
        except Exception:
            with self._cond:
                self._callbacks.pop(cmd.id, None)
            raise

    def synchronize(self, timeout: float | None = None) -> bool:
        return self.clock.wait_for(lambda: not self._callbacks, self._cond, timeout)

    def deactivate(self) -> None:
        self.device.deactivate(self.qid)

    def reactivate(self) -> None:
        self.device.reactivate(self.qid)

    def close(self) -> None:
        """Drop the launched commands that have not started; wake synchronize()."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
        dropped = self.device.remove_queue(self.qid)
        with self._cond:
            for cmd in dropped:
                self._callbacks.pop(cmd.id, None)
            self._cond.notify_all()

    @property
    def launched_count(self) -> int:
        """Commands launched and not yet complete."""
        return len(self._callbacks)

    def _on_device_complete(self, cmd: HwCommand) -> None:
        with self._cond:
            on_complete = self._callbacks.pop(cmd.id, None)
            self._cond.notify_all()
        if on_complete is not None:
            on_complete(cmd)
