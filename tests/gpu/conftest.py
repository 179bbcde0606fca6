"""GPU tests: skipped cleanly where CuPy or a CUDA device is missing."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cuda():
    """The hal.cuda package (skips the test without CuPy or a GPU)."""
    pytest.importorskip("cupy")
    from hal.errors import DeviceError

    try:
        import hal.cuda as hc
    except DeviceError as exc:
        pytest.skip(f"no usable CUDA device: {exc}")
    return hc


@pytest.fixture(scope="session")
def device(cuda):
    """GPU 0, whose suspended queues nap unless a test says otherwise: with parking on
    `auto` the gate would depend on which other tests' processes are alive (hal.sharing)."""
    from hal.sharing import NEVER, SharingWatch

    dev = cuda.CudaDevice.open(0)
    dev.sharing = SharingWatch(NEVER, None)
    return dev


@pytest.fixture
def device_runtime(device):
    """Skips where CUDA refuses guarded kernels dynamic parallelism (under MPS: the host
    then gates every guarded launch, hal.cuda.guard); a compile that fails for any other
    reason is left to fail the test."""
    kernel = device.spin.kernel
    if not kernel.tail and "CDP_NOT_SUPPORTED" in (kernel.no_tail_reason or ""):
        pytest.skip(f"no dynamic parallelism here ({kernel.no_tail_reason}): CUDA refuses it to MPS clients")


@pytest.fixture
def mps_clients(device) -> int:
    """How many MPS clients NVML sees on the GPU (0 without MPS, or where NVML cannot tell)."""
    from hal.sharing import nvml_probe

    probe = nvml_probe(device.info.pci_bus_id)
    seen = probe() if probe is not None else None
    return seen[1] if seen is not None else 0
