"""Host cost of one kernel launch: CuPy's RawKernel call (the baseline) against
hal.cuda.launch's packed launch, for the spin kernel plain (3 arguments) and guarded
(3 + 9), as a level-2 queue launches it. Each launch is timed on the host only, in runs
of `--launches` back to back behind a GPU kept busy, so that no launch waits for the
device; the ratio is baseline / ours.
Usage: python bench/cuda_launch_cost.py
"""

from __future__ import annotations

import argparse
import time

from cuda_common import open_cuda, pct, table, write


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--launches", type=int, default=2000)
    p.add_argument("--runs", type=int, default=9)
    a = p.parse_args(argv)
    import cupy
    import numpy as np

    from hal.cuda.spin import _kernel as spin

    dev = open_cuda()
    q = dev.create_queue(guard=True)
    stream = cupy.cuda.Stream(non_blocking=True)
    user = (np.uint64(0), np.uint64(0), np.uint64(0))  # a 0 ns spin, no counts: the GPU keeps up
    # MAIN_EXTRA (hal.cuda.instrument): epoch 5, no board, level 0, a sentinel every 132 blocks, no ticket
    extra = (q._flag.ptr, q._flag.host_ptr, q._state.data.ptr, q._flushed.data.ptr, 5, 0, 0, 132, 0, 0, 0)
    one = ((1, 1, 1), (128, 1, 1))

    def cupy_call(kernel, args):
        def run():
            with stream:
                kernel(*one, args)
        return run

    def packed(launcher, extras):
        def run():
            launcher(*one, user, 0, stream, dev.index, extras)
        return run

    guarded_args = (*user, np.uint64(extra[0]), np.uint64(extra[1]), q._state, q._flushed, np.uint32(5),
                    np.uint64(0), np.uint32(0), np.uint32(132), np.uint64(0), np.uint64(0), np.uint64(0))  # fmt: skip
    configs = {
        "plain_cupy_call": cupy_call(spin.plain, user),
        "plain_packed": packed(spin.launch_plain, ()),
        "guarded_cupy_call": cupy_call(spin.main, guarded_args),
        "guarded_packed": packed(spin.launch_main, extra),
    }
    samples: dict[str, list[float]] = {k: [] for k in configs}
    for r in range(a.runs + 1):
        for k, run in configs.items():
            t = time.perf_counter()
            for _ in range(a.launches):
                run()
            dt_us = (time.perf_counter() - t) / a.launches * 1e6
            stream.synchronize()
            if r:  # the first run warms up
                samples[k].append(dt_us)
    results, rows = {}, []
    for k, v in samples.items():
        results[k] = {"p50_us": pct(v, 50), "min_us": min(v)}
    for kind in ("plain", "guarded"):
        ratio = results[f"{kind}_cupy_call"]["p50_us"] / results[f"{kind}_packed"]["p50_us"]
        results[f"{kind}_packed"]["speedup_vs_cupy_call"] = ratio
    for k, v in results.items():
        rows.append([k, v["p50_us"], f"{v['speedup_vs_cupy_call']:.2f}x" if "speedup_vs_cupy_call" in v else ""])
    path = write("cuda_launch_cost", dev, vars(a), results)
    print(table(f"Host cost per launch on {dev.info.name} -> {path}", ["config", "p50 us/launch", "vs CuPy call"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
