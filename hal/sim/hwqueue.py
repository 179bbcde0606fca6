"""SimHwQueue: the HwQueue of the simulated XPU, over a local engine or a shared device."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from hal.clock import Clock
from hal.command import HwCommand, Level
from hal.errors import HalError
from hal.hwqueue import CompletionCallback, HwQueue


class DevicePort(Protocol):
    """What a SimHwQueue needs from its device: SimEngine, or a client of a shared one."""

    def add_queue(self, on_complete: Callable[[int], None]) -> int: ...
    def remove_queue(self, qid: int) -> None: ...
    def launch(self, qid: int, token: int, duration_us: float) -> None: ...
    def deactivate(self, qid: int) -> None: ...
    def reactivate(self, qid: int) -> None: ...
    def interrupt(self, qid: int) -> None: ...
    def restore(self, qid: int) -> None: ...


class SimHwQueue(HwQueue):
    """A hardware queue of the simulated XPU; supports levels 1, 2 and 3.

    A command's payload runs when the device reports the command complete, in launch
    order, on the thread that delivers completions.
    """

    max_level = Level.INTERRUPT

    def __init__(self, port: DevicePort, clock: Clock, device_name: str = "sim") -> None:
        self.clock = clock
        self.device_name = device_name
        self._port = port
        self._cond = threading.Condition()
        self._launched: dict[int, tuple[HwCommand, CompletionCallback | None]] = {}
        self._closed = False
        self.qid = port.add_queue(self._on_device_complete)

    def launch(self, cmd: HwCommand, on_complete: CompletionCallback | None = None) -> None:
        with self._cond:
            if self._closed:
                raise HalError("launch on a closed hardware queue")
            self._launched[cmd.id] = (cmd, on_complete)
        self._port.launch(self.qid, cmd.id, cmd.duration_us)

    def synchronize(self, timeout: float | None = None) -> bool:
        return self.clock.wait_for(lambda: not self._launched, self._cond, timeout)

    def deactivate(self) -> None:
        self._port.deactivate(self.qid)

    def reactivate(self) -> None:
        self._port.reactivate(self.qid)

    def interrupt(self) -> None:
        self._port.interrupt(self.qid)

    def restore(self) -> None:
        self._port.restore(self.qid)

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
        self._port.remove_queue(self.qid)

    @property
    def launched_count(self) -> int:
        """Commands launched and not yet complete (in the hardware queue or running)."""
        return len(self._launched)

    def _on_device_complete(self, token: int) -> None:
        with self._cond:
            entry = self._launched.get(token)
        if entry is None:
            return
        cmd, on_complete = entry
        cmd.run_payload()
        with self._cond:
            del self._launched[token]
            self._cond.notify_all()
        if on_complete is not None:
            on_complete(cmd)
