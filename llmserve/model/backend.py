"""The array backend of the model: NumPy on the CPU, CuPy on a CUDA device (optional).

The model is written once against `backend.xp`; this module is the only place that
knows which library that is. CuPy is imported only when a `cuda:N` backend is asked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmserve.errors import ConfigError, LLMServeError


class BackendUnavailableError(LLMServeError):
    """The asked-for device cannot be used here (no CuPy, no CUDA device)."""


@dataclass(frozen=True)
class Backend:
    """An array module bound to one device. `dtype` is the weights' and KV cache's type
    (float32 on the CPU, float16 on the GPU by default); norms and softmax run in float32.
    """

    device: str  # "cpu" or "cuda:N"
    xp: Any  # numpy or cupy
    dtype: Any

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def device_index(self) -> int:
        return int(self.device.split(":", 1)[1]) if self.is_cuda else -1

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        """Make this backend's device current on the calling thread (CuPy's current
        device is per thread, and steps run on a device worker thread)."""
        if not self.is_cuda:
            yield
            return
        with self.xp.cuda.Device(self.device_index):
            yield

    def to_host(self, array: Any, out: np.ndarray | None = None) -> np.ndarray:
        """A NumPy copy of `array` (synchronising the device), into `out` when given."""
        if not self.is_cuda:
            if out is None:
                return np.asarray(array)
            out[...] = array
            return out
        return array.get(out=out)

    def to_device(self, array: np.ndarray) -> Any:
        return self.xp.asarray(array)

    def to_device_many(self, arrays: list[np.ndarray]) -> list[Any]:
        """Integer host arrays on the device as int64, in one host-to-device copy (views
        of one buffer); on the CPU the arrays themselves."""
        if not self.is_cuda:
            return list(arrays)
        flat = np.concatenate([np.asarray(a, dtype=np.int64).ravel() for a in arrays])
        buffer = self.xp.asarray(flat)
        out, at = [], 0
        for a in arrays:
            out.append(buffer[at : at + a.size].reshape(a.shape))
            at += a.size
        return out

    def empty_host(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """Host memory for KV swapping: page-locked (pinned) on CUDA so copies run at full
        PCIe speed, an ordinary array on the CPU."""
        if not self.is_cuda:
            return np.empty(shape, dtype=dtype)
        import cupyx

        return cupyx.empty_pinned(shape, dtype=dtype)

    def randn(self, shape: tuple[int, ...], seed: int, scale: float) -> Any:
        """Seeded standard-normal values times `scale`, generated on the device, in `dtype`."""
        if self.is_cuda:
            rs = self.xp.random.RandomState(seed)
            values = rs.standard_normal(shape, dtype=self.xp.float32)
        else:
            values = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
        values *= scale
        return values.astype(self.dtype, copy=False)

    def synchronize(self) -> None:
        if self.is_cuda:
            self.xp.cuda.get_current_stream().synchronize()


def make_backend(device: str = "cpu", dtype: str | None = None) -> Backend:
    """`cpu` (NumPy) or `cuda:N` (CuPy); `dtype` float32 / float16 overrides the default."""
    spec = device.strip().lower()
    if spec == "cpu":
        xp: Any = np
    elif spec.startswith("cuda:") and spec[5:].isdigit():
        xp = _cupy(spec)
    else:
        raise ConfigError(f"unknown model device {device!r}; use cpu or cuda:N")
    name = dtype or ("float16" if spec != "cpu" else "float32")
    if name not in ("float32", "float16", "float64"):
        raise ConfigError(f"model dtype must be float32, float16 or float64, got {dtype!r}")
    return Backend(spec, xp, getattr(xp, name))


def _cupy(spec: str) -> Any:
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailableError(
            f"device {spec} needs CuPy (pip install cupy-cuda12x): {exc}"
        ) from None
    index = int(spec[5:])
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - CUDARuntimeError or a missing driver
        raise BackendUnavailableError(f"device {spec}: no usable CUDA driver: {exc}") from None
    if index >= count:
        raise BackendUnavailableError(f"device {spec}: only {count} CUDA device(s) visible")
    return cupy
