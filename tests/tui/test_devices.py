"""The device panel's NVML source, against a stand-in for pynvml (no GPU needed)."""

from __future__ import annotations

from types import SimpleNamespace

from xsched_tui.devices import NO_GPU, DeviceSource, DevicesView, GpuRow
from xsched_tui.widgets.device_panel import _processes


class FakeNvml:
    """What DeviceSource asks of pynvml, for one GPU; `fail` names queries that raise."""

    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, procs: int = 3, mps: int = 2, fail: tuple[str, ...] = ()) -> None:
        self.procs, self.mps, self.fail = procs, mps, fail

    def _maybe_fail(self, name: str) -> None:
        if name in self.fail:
            raise RuntimeError(f"{name}: Not Supported")

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return f"h{i}"

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=87)

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(used=2 * 2**30, total=80 * 2**30)

    def nvmlDeviceGetClockInfo(self, h, kind):
        return 1980 if kind == self.NVML_CLOCK_SM else 2619

    def nvmlDeviceGetTemperature(self, h, kind):
        return 41

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        self._maybe_fail("compute")
        return [object()] * self.procs

    def nvmlDeviceGetMPSComputeRunningProcesses(self, h):
        self._maybe_fail("mps")
        return [object()] * self.mps

    def nvmlShutdown(self):
        pass


def source(nvml) -> DeviceSource:
    src = DeviceSource.__new__(DeviceSource)
    src._nvml = nvml
    return src


def test_a_gpu_row_counts_compute_processes_and_mps_clients():
    view = source(FakeNvml(procs=3, mps=2)).sample()
    (row,) = view.gpus
    assert view.message == ""
    assert (row.name, row.util_percent, row.mem_used_mib, row.sm_clock_mhz) == ("NVIDIA H100 80GB HBM3", 87.0, 2048, 1980)
    assert (row.processes, row.mps_clients) == (3, 2)
    assert _processes(row) == "procs 3 (MPS 2)"


def test_without_mps_two_processes_are_time_sliced_and_one_is_alone():
    (row,) = source(FakeNvml(procs=2, mps=0)).sample().gpus
    assert _processes(row) == "procs 2, time-sliced"  # where suspended level-2 CUDA queues park
    (row,) = source(FakeNvml(procs=1, mps=0)).sample().gpus
    assert _processes(row) == "procs 1"


def test_a_query_the_driver_refuses_is_na_not_a_crash():
    (row,) = source(FakeNvml(fail=("compute", "mps"))).sample().gpus
    assert (row.processes, row.mps_clients) == (None, None)
    assert _processes(row) == "procs N/A"
    assert row.temperature_c == 41  # the rest of the row is still there


def test_an_nvml_without_the_mps_query_counts_processes_only():
    nvml = FakeNvml(procs=1)
    nvml.nvmlDeviceGetMPSComputeRunningProcesses = None  # older nvidia-ml-py: no such call
    (row,) = source(nvml).sample().gpus
    assert (row.processes, row.mps_clients) == (1, None)
    assert _processes(row) == "procs 1"


def test_no_nvml_says_no_gpu():
    assert source(None).sample() == DevicesView(message=NO_GPU)
    assert GpuRow(0, "x", None, None, None, None, None, None).processes is None
