"""A real CPU "device": one worker thread executes commands' payloads (levels 1 and 2)."""

from hal.cpu.device import CpuDevice
from hal.cpu.hwqueue import CpuHwQueue

__all__ = ["CpuDevice", "CpuHwQueue"]
