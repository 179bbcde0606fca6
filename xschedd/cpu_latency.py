"""A bound on the CPUs' wake-up latency while the daemon runs (`xschedd --cpu-latency-us`).

A suspend crosses two wake-ups: the submitting thread's message wakes the daemon, whose
decision writes the targets' gates. On an idle machine each CPU on that path sleeps in
an idle state (on a VM, halted: an exit to the hypervisor), and waking it, then running
Python in caches gone cold, costs more than the work: on the 2-core development VM the
daemon took 180 us for a one-queue decision after 20 ms of idle against 16 us warm, and
55 us with the bound at 0 (docs/architecture.md, "The control plane's wake-ups").

Linux's PM QoS interface for this is /dev/cpu_dma_latency: a process writes a bound in
microseconds (a native int32) and keeps the file open; while any such request is open
the kernel picks no idle state slower to leave than the lowest bound, and at 0 its idle
CPUs poll instead of sleeping. Closing the file (or the process exiting, even killed)
withdraws the request. That costs power on bare metal and, on a VM, the host sees idle
vCPUs as busy: the reason it is off unless asked for. Opening the file takes root (it
is 0600 root). The kernel applies the bound through its cpuidle driver: where there is
none (`current_driver` reads "none", as on the H100 host's VM), idle CPUs halt whatever
the bound, and the daemon says so when it starts.
"""

from __future__ import annotations

import os
import struct

from xschedd.errors import DaemonError

PM_QOS_PATH = "/dev/cpu_dma_latency"
CPUIDLE_DRIVER_PATH = "/sys/devices/system/cpu/cpuidle/current_driver"
_VALUE = struct.Struct("=i")  # the kernel reads and writes a native s32
MAX_US = 2_000_000_000  # the kernel's default, "no bound"


class CpuLatencyError(DaemonError):
    """The bound could not be requested; the message says why and what to do."""


class CpuLatencyRequest:
    """Holds a PM QoS request of `us` microseconds until `close()`."""

    def __init__(self, us: int, path: str = PM_QOS_PATH) -> None:
        if not 0 <= us <= MAX_US:
            raise ValueError(f"a CPU wake-up latency bound is 0..{MAX_US} us, got {us}")
        self.us = us
        self.path = path
        try:
            self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            hint = " (it takes root)" if isinstance(exc, PermissionError) else ""
            raise CpuLatencyError(f"cannot request a CPU wake-up latency bound: {path}: {exc.strerror}{hint}") from None
        try:
            os.write(self._fd, _VALUE.pack(us))
        except OSError as exc:
            self.close()
            raise CpuLatencyError(f"cannot request a CPU wake-up latency bound: {path}: {exc.strerror}") from None

    def close(self) -> None:
        """Withdraw the request."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> CpuLatencyRequest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def current_bound_us(path: str = PM_QOS_PATH) -> int | None:
    """The bound in force now (the lowest of all requests; MAX_US for none), or None if
    it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, _VALUE.size)
    finally:
        os.close(fd)
    return _VALUE.unpack(data)[0] if len(data) == _VALUE.size else None


def cpuidle_driver(path: str = CPUIDLE_DRIVER_PATH) -> str | None:
    """The kernel's cpuidle driver ("none" if it has none), or None if it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def bound_has_effect(path: str = CPUIDLE_DRIVER_PATH) -> bool:
    """Whether a bound can change how this machine's CPUs idle (unknown counts as yes)."""
    return cpuidle_driver(path) != "none"
