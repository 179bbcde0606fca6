"""Preemption latency on the GPU (paper Fig. 11 a/b): suspend call -> device quiet, P99.

A background XQueue (threshold 8) runs spin kernels of duration T back to back. At random
moments we stamp the device clock on an idle side stream and call `suspend()`; every
spin block raises a device-side `last_end` to its end time, so `last_end - stamp` is how
long the background kept the GPU after the suspend call (device %globaltimer, not host
estimates; the stamp runs on a top-priority stream, so it starts within one block's
time). The host columns time the stamp's launch plus the `suspend()` call, which the
device latency includes. Per level and T in 0.1, 0.5, 1, 2 ms. Usage: python bench/cuda_preempt_latency.py
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time

from cuda_common import open_cuda, pct, table, write


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

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    time.sleep(0.2)
    quiet_wait = threshold * t_us * 1e-6 * 1.5 + 0.003
    lat, host = [], []
    for _ in range(samples):
        time.sleep(rnd.uniform(0.003, 0.003 + 4 * t_us * 1e-6))
        h = time.perf_counter()
        with side:
            stamp(t0)
        xq.suspend()
        host.append((time.perf_counter() - h) * 1e6)
        time.sleep(quiet_wait)
        with side:
            end, start = int(last_end.get(stream=side)[0]), int(t0.get(stream=side)[0])
        lat.append(max(0, end - start) / 1e3)
        xq.resume()
    stop.set()
    feeder.join()
    xq.close()
    hwq.close()
    return lat, host


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=60)
    p.add_argument("--threshold", type=int, default=8)
    p.add_argument("--block-us", type=float, default=10.0)
    p.add_argument("--durations-us", default="100,500,1000,2000")
    p.add_argument("--levels", default="1,2")
    a = p.parse_args(argv)
    dev = open_cuda(a.block_us)
    rnd = random.Random(1)
    results, rows = {}, []
    for level in [int(x) for x in a.levels.split(",")]:
        for t in [float(x) for x in a.durations_us.split(",")]:
            lat, host = measure(dev, level, t, a.threshold, a.samples, rnd)
            r = {"p50_us": pct(lat, 50), "p99_us": pct(lat, 99), "max_us": max(lat),
                 "p99_over_T": pct(lat, 99) / t, "samples_us": [round(x, 1) for x in lat],
                 "host_p50_us": pct(host, 50), "host_p99_us": pct(host, 99),
                 "host_samples_us": [round(x, 1) for x in host]}  # fmt: skip
            results[f"lv{level}_T{int(t)}us"] = r
            rows.append([f"Lv{level}", int(t), r["p50_us"], r["p99_us"], r["p99_over_T"],
                         r["host_p50_us"], r["host_p99_us"]])  # fmt: skip
    params = {**vars(a), "spin_wave_us": dev.spin.wave_us, "gate": dev.create_queue(guard=True).gate_kind}
    path = write("cuda_preempt_latency", dev, params, results)
    print(table(f"Preemption latency on {dev.info.name}, threshold {a.threshold}, block {a.block_us} us -> {path}",
                ["level", "T us", "p50 us", "p99 us", "p99/T", "host p50 us", "host p99 us"], rows))  # fmt: skip
    return 0


if __name__ == "__main__":
    os._exit(main())
