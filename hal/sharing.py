"""Whether a GPU is time-sliced with another process, which decides how a suspended
level-2 CUDA queue waits (hal.cuda.gate).

Without MPS every process on a GPU has its own context, and the GPU gives contexts time
slices while any of them has a kernel resident. A queue suspended behind the napping
gate keeps a one-block kernel resident, so the process that should have the GPU gets
only its share of the slices (measured on the H100, UP 75/25 of two processes at level
2: 0.57 of one process's throughput in all). Behind the ticket gate the stream parks
with nothing on the GPU, at a few microseconds per guarded command. So a queue parks
while another process has a context on its GPU and no MPS server joins them (under MPS
the contexts share the SMs and the napping gate costs nothing), and naps otherwise.

`$XSCHED_CUDA_PARK`: `auto` (the default: NVML tells, polled every `POLL_S`), `1`/`on`
(always park), `0`/`off` (never). Without NVML `auto` never parks.
No CuPy here: the decision and the parsing are tested on any machine.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from hal.errors import DeviceError

log = logging.getLogger(__name__)

ENV = "XSCHED_CUDA_PARK"
POLL_S = 0.5
AUTO, ALWAYS, NEVER = "auto", "on", "off"

# (compute processes on the GPU, MPS clients among them), or None where NVML cannot tell
Probe = Callable[[], "tuple[int, int] | None"]


def mode(env: dict[str, str] | None = None) -> str:
    """AUTO, ALWAYS or NEVER from $XSCHED_CUDA_PARK; a bad value raises DeviceError."""
    raw = (os.environ if env is None else env).get(ENV, "")
    value = raw.strip().lower()
    if value in ("", "auto"):
        return AUTO
    if value in ("1", "on", "true", "yes"):
        return ALWAYS
    if value in ("0", "off", "false", "no"):
        return NEVER
    raise DeviceError(f"{ENV}={raw!r}: expected auto, 1 (always park) or 0 (never)")


def time_sliced(processes: int, mps_clients: int) -> bool:
    """Whether this process (one of `processes` with a context on the GPU) shares it with
    another context by time slices: another process is there and none is an MPS client."""
    return processes >= 2 and mps_clients == 0


def nvml_probe(pci_bus_id: str) -> Probe | None:
    """A probe of the GPU at `pci_bus_id` through NVML, or None without NVML."""
    try:
        import pynvml  # provided by nvidia-ml-py

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByPciBusId(pci_bus_id)
    except Exception as exc:  # noqa: BLE001 - no NVML, no driver, or a GPU NVML cannot see
        log.info("NVML cannot watch %s (%s): CUDA queues nap when suspended", pci_bus_id, exc)
        return None

    def count(name: str) -> int:
        try:
            return len(getattr(pynvml, name)(handle))
        except Exception:  # noqa: BLE001 - e.g. NotSupported for MPS queries
            return 0

    def probe() -> tuple[int, int] | None:
        try:
            return len(pynvml.nvmlDeviceGetComputeRunningProcesses(handle)), count(
                "nvmlDeviceGetMPSComputeRunningProcesses")
        except Exception:  # noqa: BLE001 - a transient NVML error: keep the last answer
            return None

    return probe


class SharingWatch:
    """`park`: whether suspended queues on one GPU should park now (see the module
    docstring). A plain attribute, read on every guarded launch; in AUTO a daemon thread
    refreshes it from `probe` every `poll_s`, starting at the first `start()`."""

    def __init__(self, how: str, probe: Probe | None, poll_s: float = POLL_S) -> None:
        self.mode = how
        self.park = how == ALWAYS
        self._probe = probe if how == AUTO else None
        self._poll_s = poll_s
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        """Begin watching (once; nothing to do unless AUTO with a probe)."""
        with self._lock:
            if self._probe is None or self._thread is not None:
                return
            self.refresh()
            self._thread = threading.Thread(target=self._run, name="xsched-gpu-sharing", daemon=True)
            self._thread.start()

    def refresh(self) -> None:
        seen = self._probe() if self._probe is not None else None
        if seen is not None:
            park = time_sliced(*seen)
            if park != self.park:
                log.info("GPU %s by another process: suspended queues %s", "time-sliced" if park else "no longer shared",
                         "park" if park else "nap")  # fmt: skip
            self.park = park

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            self.refresh()
