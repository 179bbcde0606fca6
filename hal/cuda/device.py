"""CudaDevice: one GPU as an application opens it; discovery and names through NVML."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

import cupy

from hal.anticipation import lead_us as board_lead_us
from hal.board import ENV as BOARD_ENV
from hal.board import PriorityBoard, board_for
from hal.board import enabled as board_enabled
from hal.clock import Clock, default_clock
from hal.cuda.completions import Completions, EventPool
from hal.cuda.durations import LaunchDurations
from hal.cuda.errors import CudaUnavailableError
from hal.sharing import AUTO, SharingWatch, nvml_probe
from hal.sharing import mode as park_mode


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    pci_bus_id: str
    memory_bytes: int
    sm_count: int


def _nvml_name(pci_bus_id: str) -> str | None:
    """The marketing name NVML gives the GPU at `pci_bus_id` (None without NVML)."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByPciBusId(pci_bus_id)
            name = pynvml.nvmlDeviceGetName(handle)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - NVML absent or refusing: fall back to CUDA's name
        return None
    return name.decode() if isinstance(name, bytes) else str(name)


def describe(index: int) -> DeviceInfo:
    count = cupy.cuda.runtime.getDeviceCount()
    if not 0 <= index < count:
        raise CudaUnavailableError(f"cuda:{index}: no such device; there are {count} (cuda:0..cuda:{count - 1})")
    props = cupy.cuda.runtime.getDeviceProperties(index)
    bus = cupy.cuda.Device(index).pci_bus_id
    cuda_name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return DeviceInfo(
        index=index,
        name=_nvml_name(bus) or cuda_name,
        pci_bus_id=bus,
        memory_bytes=int(props["totalGlobalMem"]),
        sm_count=int(props["multiProcessorCount"]),
    )


def list_devices() -> list[DeviceInfo]:
    """Every visible CUDA device, in CUDA's order."""
    return [describe(i) for i in range(cupy.cuda.runtime.getDeviceCount())]


def _open_board(pci_bus_id: str) -> PriorityBoard:
    try:
        return board_for(pci_bus_id)
    except OSError as exc:
        raise CudaUnavailableError(f"cannot open the priority board ({BOARD_ENV}=1): {exc}") from exc


class CudaDevice:
    """A GPU: `create_queue()` gives CudaHwQueues sharing one event pool."""

    _opened: dict[int, CudaDevice] = {}
    _lock = threading.Lock()

    def __init__(self, index: int, clock: Clock | None = None, board: bool | None = None) -> None:
        self.info = describe(index)
        # the priority board (hal.board): HPF across processes on the GPU itself, opt-in
        use_board = board_enabled() if board is None else board
        self.board: PriorityBoard | None = _open_board(self.info.pci_bus_id) if use_board else None
        # hal.anticipation: how long before a periodic queue's next task its board level is held
        self.board_lead_us = board_lead_us()  # a bad value raises DeviceError
        # whether a suspended queue parks (another process time-slices the GPU) or naps (hal.sharing)
        how = park_mode()  # a bad $XSCHED_CUDA_PARK raises DeviceError, as a bad $XSCHED_CUDA_BOARD does
        self.sharing = SharingWatch(how, nvml_probe(self.info.pci_bus_id) if how == AUTO else None)
        self.index = index
        self.name = f"cuda:{index}"
        self.clock = clock or default_clock()
        self.pool = EventPool(index)
        self.completions = Completions(index, self.pool)
        self.durations = LaunchDurations(index)

    @classmethod
    def open(cls, index: int = 0) -> CudaDevice:
        """The process-wide device object for `cuda:index`."""
        with cls._lock:
            if index not in cls._opened:
                cls._opened[index] = cls(index)
            return cls._opened[index]

    @property
    def sm_count(self) -> int:
        return self.info.sm_count

    @cached_property
    def claim(self):  # -> ContextClaim: take the GPU for this context ahead of a task (hal.anticipation)
        from hal.cuda.claim import ContextClaim

        return ContextClaim(self.index)

    @cached_property
    def spin(self):  # -> SpinKernel (imported lazily: it compiles on first use)
        from hal.cuda.spin import SpinKernel

        return SpinKernel(self)

    def create_queue(self, stream: cupy.cuda.Stream | None = None, *, priority: int = 0,
                     guard: bool | None = None, board: bool | None = None):  # fmt: skip
        """`priority`: the CUDA stream priority to start with; `board`: join this GPU's
        priority board (None: as the device was opened, see $XSCHED_CUDA_BOARD)."""
        from hal.cuda.hwqueue import CudaHwQueue

        use = self.board if board is None else (_open_board(self.info.pci_bus_id) if board else None)
        queue = CudaHwQueue(self, stream, priority=priority, guard=guard, board=use)
        self.sharing.start()  # with this process's context made: NVML counts it among the GPU's
        return queue

    def close(self) -> None:
        pass
