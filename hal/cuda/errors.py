"""The errors of the CUDA adapter (importable without CuPy)."""

from __future__ import annotations

from hal.errors import DeviceError, HalError


class CudaUnavailableError(DeviceError):
    """CuPy, the CUDA driver or a GPU is missing, so `hal.cuda` cannot be used."""


class GuardError(HalError):
    """A kernel source that cannot be instrumented for level-2 preemption."""
