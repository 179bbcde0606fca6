"""How much of a run the host spent slow: a meter for the GPU benchmarks' noisy machines.

On the H100 VMs the whole machine now and then runs every CPU at ~10% of its speed for
60-100 ms, every second or two (docs/h100-benchmarks.md, "The start is the quiet
machine's tail"). A task caught in such a stretch pays about ten times its host time, so
a run's P99 there says as much about the machine as about the scheduler. `HostMeter`
runs one small process that times a fixed unit of Python work (about UNIT_US) every
PERIOD_S, about 3% of one CPU, and `stalled_share(t0, t1)` says which share of the time
between two `time.monotonic()` times was in slow cycles of it: a cycle (from one unit's
end to the next's) is slow where its unit began over LATE_S late (the sleep before it
overran: a stalled CPU wakes nobody) or its work took over SLOW_FACTOR times the median
unit's (a CPU running slow). About 0 on a quiet host; half for a meter stopped half
the time. A busy host counts too, less: the meter sleeps most of the time, so the
kernel runs it soon when it wakes. The units are timed on CLOCK_MONOTONIC, the
same clock in every process.
"""

from __future__ import annotations

import itertools
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable

UNIT_US = 30.0
PERIOD_S = 0.001
SLOW_FACTOR = 3.0
LATE_S = 0.001
RECORD = struct.Struct("<qqq")  # the unit's end (monotonic ns), its work (ns), how late it began (ns)

_METER = """
import signal, struct, sys, time
out = open(sys.argv[1], "ab", buffering=0)
unit_us, period, rec = float(sys.argv[2]), float(sys.argv[3]), struct.Struct(sys.argv[4])
def work(n):
    s = 0
    for i in range(n):
        s += i
    return s
n, trials = 1000, []
for _ in range(21):  # a unit of about unit_us, from the median of 21 timings
    t = time.monotonic_ns(); work(n); trials.append(time.monotonic_ns() - t)
n = max(1, int(n * unit_us * 1e3 / sorted(trials)[10]))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
buf = bytearray()
due = time.monotonic_ns()
try:
    while True:
        t = time.monotonic_ns(); work(n); u = time.monotonic_ns()
        buf += rec.pack(u, u - t, max(0, t - due))
        if len(buf) >= 64 * rec.size:
            out.write(buf); buf.clear()
        due = time.monotonic_ns() + int(period * 1e9)
        time.sleep(period)
finally:
    out.write(buf)
"""


def stalled_share(records: Iterable[tuple[int, int, int]], t0: float, t1: float, factor: float = SLOW_FACTOR,
                  late_s: float = LATE_S) -> float | None:  # fmt: skip
    """The share of the time from monotonic `t0` to `t1` (seconds) in the meter's slow
    cycles, from `records` ((end ns, work ns, late ns) each, in order): a unit that
    ended in between is slow where it began over `late_s` late or its work took over
    `factor` times the median of every unit's, and its cycle is the time since the unit
    before it ended. None where no unit ended in between."""
    records = list(records)
    if len(records) < 2 or t1 <= t0:
        return None
    median = statistics.median(work for _, work, _ in records)
    lo, hi, late = int(t0 * 1e9), int(t1 * 1e9), late_s * 1e9
    slow, any_inside = 0, False
    for (before, _, _), (end, work, behind) in itertools.pairwise(records):
        if lo <= end <= hi:
            any_inside = True
            if behind > late or work > factor * median:
                slow += end - max(before, lo)
    return min(1.0, slow / (hi - lo)) if any_inside else None


class HostMeter:
    """The meter's process for the duration of a `with` block (see the module docstring)."""

    def __init__(self, unit_us: float = UNIT_US, period_s: float = PERIOD_S) -> None:
        self._unit_us, self._period_s = unit_us, period_s
        self._proc: subprocess.Popen | None = None
        self._path = ""

    def __enter__(self) -> HostMeter:
        fd, self._path = tempfile.mkstemp(prefix="xsched-host-meter-")
        os.close(fd)
        self._proc = subprocess.Popen([sys.executable, "-c", _METER, self._path, str(self._unit_us),
                                       str(self._period_s), RECORD.format],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        return self

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._path:
            os.unlink(self._path)

    def records(self) -> list[tuple[int, int, int]]:
        """Every unit timed so far (the last few may still be in the meter's buffer)."""
        with open(self._path, "rb") as f:
            data = f.read()
        data = data[: len(data) - len(data) % RECORD.size]
        return list(RECORD.iter_unpack(data))

    def stalled_share(self, t0: float, t1: float) -> float | None:
        """See the module's `stalled_share`, over every unit timed so far."""
        return stalled_share(self.records(), t0, t1)
