"""Preemption latency on the GPU (paper Fig. 11 a/b): suspend call -> device quiet, P99.

A background XQueue (threshold 8) runs spin kernels of duration T back to back. At random
moments we call `suspend()`; every spin block raises a device-side `last_end` to its end
time (device %globaltimer), so the latency is `last_end` minus the moment of the call on
the device's clock. The host's clock is mapped onto the device's by round trips on an
idle top-priority side stream before and after each configuration (a stamp kernel between
two host readings bounds the offset; the tightest bounds over 200 trips, interpolated
for drift; the JSON keeps the bound, a few us). The "stamp" columns measure as before:
from a device stamp launched just before the call, which adds the stamp launch's return
to the host (a contended driver call: up to hundreds of us at P99). The host columns time
the `suspend()` call. Per level and T in 0.1, 0.5, 1, 2 ms.
Usage: python bench/cuda_preempt_latency.py
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time

from cuda_common import open_cuda, pct, results_name, table, write


def measure(dev, level: int, t_us: float, threshold: int, samples: int, rnd: random.Random):
    import cupy

    from hal.cuda.gate import stream_priority_range
    from hal.cuda.spin import stamp
    from preempt import XQueue

    hwq = dev.create_queue(guard=level >= 2)
    xq = XQueue(hwq, level=level, threshold=threshold)
    last_end = cupy.zeros(1, dtype=cupy.uint64)
    t0 = cupy.zeros(1, dtype=cupy.uint64)
    side = cupy.cuda.Stream(non_blocking=True, priority=stream_priority_range()[1])
    stop = threading.Event()

    def feed():
        while not stop.is_set():
            info = xq.info()
            if info.pending < 2 * threshold:
                for _ in range(threshold):
                    xq.submit(dev.spin.command(t_us, last_end=last_end))
            else:
                time.sleep(0.0005)

    before = clock_offset(side, t0)
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    time.sleep(0.2)
    quiet_wait = threshold * t_us * 1e-6 * 1.5 + 0.003
    stamped, calls, host = [], [], []
    for _ in range(samples):
        time.sleep(rnd.uniform(0.003, 0.003 + 4 * t_us * 1e-6))
        with side:
            stamp(t0)
        h = time.perf_counter_ns()
        xq.suspend()
        host.append((time.perf_counter_ns() - h) / 1e3)
        time.sleep(quiet_wait)
        with side:
            end, start = int(last_end.get(stream=side)[0]), int(t0.get(stream=side)[0])
        stamped.append(max(0, end - start) / 1e3)
        calls.append((h, end))
        xq.resume()
    stop.set()
    feeder.join()
    xq.close()
    after = clock_offset(side, t0)
    hwq.close()
    lat = [max(0.0, end - (h + _interpolate(before, after, h))) / 1e3 for h, end in calls]
    return lat, stamped, host, max(before[2], after[2]) / 1e3


def clock_offset(side, buf, trips: int = 200) -> tuple[int, float, float]:
    """(host ns, device minus host clock in ns, half the width of its bounds in ns): a
    stamp kernel runs between two host readings a and b, so the offset lies in
    [g - b, g - a]; the tightest bounds over `trips` round trips."""
    from hal.cuda.spin import stamp

    lo, hi = float("-inf"), float("inf")
    for _ in range(trips):
        a = time.perf_counter_ns()
        with side:
            stamp(buf)
        side.synchronize()
        b = time.perf_counter_ns()
        g = int(buf.get(stream=side)[0])
        lo, hi = max(lo, g - b), min(hi, g - a)
    return time.perf_counter_ns(), (lo + hi) / 2, abs(hi - lo) / 2


def _interpolate(before, after, h: int) -> float:
    (h0, o0, _), (h1, o1, _) = before, after
    return o0 + (o1 - o0) * (h - h0) / (h1 - h0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=60)
    p.add_argument("--threshold", type=int, default=8)
    p.add_argument("--block-us", type=float, default=10.0)
    p.add_argument("--durations-us", default="100,500,1000,2000")
    p.add_argument("--levels", default="1,2")
    p.add_argument("--save-as", type=results_name, default="cuda_preempt_latency", help="results file name (without .json)")
    a = p.parse_args(argv)
    dev = open_cuda(a.block_us)
    rnd = random.Random(1)
    results, rows = {}, []
    for level in [int(x) for x in a.levels.split(",")]:
        for t in [float(x) for x in a.durations_us.split(",")]:
            lat, stamped, host, bound = measure(dev, level, t, a.threshold, a.samples, rnd)
            r = {"p50_us": pct(lat, 50), "p99_us": pct(lat, 99), "max_us": max(lat),
                 "p99_over_T": pct(lat, 99) / t, "samples_us": [round(x, 1) for x in lat],
                 "clock_mapping_bound_us": bound,
                 "stamp_p50_us": pct(stamped, 50), "stamp_p99_us": pct(stamped, 99),
                 "stamp_samples_us": [round(x, 1) for x in stamped],
                 "host_p50_us": pct(host, 50), "host_p99_us": pct(host, 99),
                 "host_samples_us": [round(x, 1) for x in host]}  # fmt: skip
            results[f"lv{level}_T{int(t)}us"] = r
            rows.append([f"Lv{level}", int(t), r["p50_us"], r["p99_us"], r["p99_over_T"], r["stamp_p50_us"],
                         r["stamp_p99_us"], r["host_p50_us"], r["host_p99_us"], bound])  # fmt: skip
    params = {**vars(a), "spin_wave_us": dev.spin.wave_us, "gate": dev.create_queue(guard=True).gate_kind}
    path = write(a.save_as, dev, params, results)
    print(table(f"Preemption latency on {dev.info.name}, threshold {a.threshold}, block {a.block_us} us -> {path}",
                ["level", "T us", "p50 us", "p99 us", "p99/T", "stamp p50", "stamp p99", "call p50", "call p99",
                 "+- us"], rows))  # fmt: skip
    return 0


if __name__ == "__main__":
    os._exit(main())
