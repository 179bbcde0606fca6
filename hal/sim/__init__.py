"""The simulated XPU: runs anywhere, the default device."""

from hal.sim.device import SimDevice
from hal.sim.engine import SimEngine
from hal.sim.hwqueue import SimHwQueue

__all__ = ["SimDevice", "SimEngine", "SimHwQueue"]
