"""The device panel's data source: NVIDIA GPUs through NVML, the one place NVML is touched.

Besides load, memory, clocks and temperature it counts the GPU's compute processes and
how many of them are clients of an MPS server: with MPS, processes share one context,
so CUDA stream priorities (which XQueue priorities set) order their work on the GPU;
without it, the GPU time-slices their contexts (docs/architecture.md).

nvidia-ml-py is optional. Without it, without a driver or without a GPU, `sample()` says
so in `DevicesView.message` ("no NVIDIA GPU") and never raises. Sampling blocks (NVML
calls), so the app runs it in a thread worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NO_GPU = "no NVIDIA GPU"


@dataclass(frozen=True)
class GpuRow:
    index: int
    name: str
    util_percent: float | None
    mem_used_mib: float | None
    mem_total_mib: float | None
    sm_clock_mhz: int | None
    mem_clock_mhz: int | None
    temperature_c: int | None
    processes: int | None = None  # compute processes on the GPU (MPS clients included)
    mps_clients: int | None = None  # of those, clients of an MPS server: 0 without MPS


@dataclass(frozen=True)
class DevicesView:
    gpus: tuple[GpuRow, ...] = ()
    message: str = ""  # why there are no rows (e.g. NO_GPU)


def _load_nvml() -> Any | None:
    try:
        import pynvml  # provided by nvidia-ml-py
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return None
    return pynvml


def _or_none(fn, *args):
    try:
        return fn(*args)
    except Exception:  # a query this GPU or driver does not support: "N/A", not a crash
        return None


def _count(nv: Any, query: str, handle: Any) -> int | None:
    """How many processes an NVML process query lists (None: not supported here)."""
    fn = getattr(nv, query, None)
    procs = None if fn is None else _or_none(fn, handle)
    return None if procs is None else len(procs)


class DeviceSource:
    """Samples NVML; create once, call `sample()` from a worker thread, `close()` at exit."""

    def __init__(self) -> None:
        self._nvml = _load_nvml()

    @property
    def available(self) -> bool:
        return self._nvml is not None

    def sample(self) -> DevicesView:
        nv = self._nvml
        if nv is None:
            return DevicesView(message=NO_GPU)
        count = _or_none(nv.nvmlDeviceGetCount) or 0
        rows = []
        for i in range(count):
            h = _or_none(nv.nvmlDeviceGetHandleByIndex, i)
            if h is None:
                continue
            name = _or_none(nv.nvmlDeviceGetName, h) or f"GPU {i}"
            util = _or_none(nv.nvmlDeviceGetUtilizationRates, h)
            mem = _or_none(nv.nvmlDeviceGetMemoryInfo, h)
            rows.append(GpuRow(
                index=i,
                name=name.decode() if isinstance(name, bytes) else str(name),
                util_percent=None if util is None else float(util.gpu),
                mem_used_mib=None if mem is None else mem.used / 2**20,
                mem_total_mib=None if mem is None else mem.total / 2**20,
                sm_clock_mhz=_or_none(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM),
                mem_clock_mhz=_or_none(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM),
                temperature_c=_or_none(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
                processes=_count(nv, "nvmlDeviceGetComputeRunningProcesses", h),
                mps_clients=_count(nv, "nvmlDeviceGetMPSComputeRunningProcesses", h),
            ))
        return DevicesView(tuple(rows), "" if rows else NO_GPU)

    def close(self) -> None:
        if self._nvml is not None:
            _or_none(self._nvml.nvmlShutdown)
            self._nvml = None
