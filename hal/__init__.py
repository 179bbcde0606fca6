"""Hardware adapters behind one HwQueue interface: the simulated XPU (default) and CUDA."""

from __future__ import annotations

from hal.clock import Clock, RealClock, VirtualClock, default_clock
from hal.command import HwCommand, Level
from hal.errors import DeviceError, HalError, UnsupportedLevelError, WouldBlockForever
from hal.hwqueue import HwQueue

DEVICE_NAMES = ("sim", "sim:local")


def open_device(spec: str):
    """Open a device by name: `sim` (the shared simulated XPU) or `sim:local` (in-process)."""
    from hal.sim import SimDevice

    if spec == "sim":
        return SimDevice.shared()
    if spec == "sim:local":
        return SimDevice.local()
    raise DeviceError(f"unknown device {spec!r}; choose one of {', '.join(DEVICE_NAMES)}")


__all__ = [
    "Clock",
    "DeviceError",
    "HalError",
    "HwCommand",
    "HwQueue",
    "Level",
    "RealClock",
    "UnsupportedLevelError",
    "VirtualClock",
    "WouldBlockForever",
    "default_clock",
    "open_device",
]
