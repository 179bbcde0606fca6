"""Hardware adapters behind one HwQueue interface: the simulated XPU (default) and CUDA."""

from __future__ import annotations

from hal.clock import Clock, RealClock, VirtualClock, default_clock
from hal.command import HwCommand, Level
from hal.errors import DeviceError, HalError, UnsupportedLevelError, WouldBlockForever
from hal.hwqueue import HwQueue

DEVICE_NAMES = ("sim", "sim:local", "cpu", "cuda:N")


def open_device(spec: str):
    """Open a device by name: `sim` (the shared simulated XPU), `sim:local` (in-process),
    or `cuda:N` (GPU N through CuPy; raises DeviceError where CUDA is unavailable)."""
    from hal.sim import SimDevice

    if spec == "sim":
        return SimDevice.shared()
    if spec == "sim:local":
        return SimDevice.local()
    if spec == "cpu":  # real payloads on one CPU worker thread (hal.cpu)
        from hal.cpu import CpuDevice

        return CpuDevice.shared()
    if spec.startswith("cuda:") and spec[5:].isdigit():
        from hal.cuda import CudaDevice

        return CudaDevice.open(int(spec[5:]))
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
