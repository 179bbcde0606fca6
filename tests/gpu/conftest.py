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
