"""SimDevice: the simulated XPU as an application opens it, in-process or shared."""

from __future__ import annotations

import os
from pathlib import Path

from hal.clock import Clock, default_clock
from hal.errors import DeviceError
from hal.sim.client import RemoteDevice, connect_or_start
from hal.sim.engine import SimEngine
from hal.sim.hwqueue import DevicePort, SimHwQueue
from hal.sim.protocol import default_socket


class SimDevice:
    """A simulated XPU. `local()` runs the model in this process (real or virtual time);
    `shared()` attaches to the device server that several processes contend for."""

    def __init__(self, port: DevicePort, clock: Clock, name: str) -> None:
        self.port = port
        self.clock = clock
        self.name = name

    @classmethod
    def local(
        cls,
        clock: Clock | None = None,
        *,
        speed: float = 1.0,
        scheduling: str = "fcfs",
        timeslice_us: float = 2000.0,
    ) -> SimDevice:
        clock = clock or default_clock()
        engine = SimEngine(clock, speed=speed, scheduling=scheduling, timeslice_us=timeslice_us)
        return cls(engine, clock, "sim:local")

    @classmethod
    def shared(cls, socket_path: Path | None = None, *, start: bool = True) -> SimDevice:
        path = socket_path or default_socket()
        speed = _env_speed()
        return cls(connect_or_start(path, speed=speed, start=start), default_clock(), "sim")

    @property
    def engine(self) -> SimEngine | None:
        """The in-process engine of a local device (None for a shared one)."""
        return self.port if isinstance(self.port, SimEngine) else None

    def create_queue(self) -> SimHwQueue:
        return SimHwQueue(self.port, self.clock, self.name)

    def close(self) -> None:
        if isinstance(self.port, RemoteDevice):
            self.port.close()


def _env_speed() -> float:
    raw = os.environ.get("XSCHED_SIM_SPEED", "1")
    try:
        speed = float(raw)
    except ValueError:
        speed = -1.0
    if not speed > 0:
        raise DeviceError(f"XSCHED_SIM_SPEED={raw!r}: expected a number > 0")
    return speed
