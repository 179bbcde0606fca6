"""Loaded by the children of bench/cuda_launch_stalls.py (on their PYTHONPATH): times each
kernel launch the process makes through hal.cuda (PackedLauncher: the queues' launches,
tickets and gates) and each claim (hal.cuda.claim), and writes the durations in
microseconds to $BENCH_LAUNCH_TIMING_DIR/launches_<pid>.json at exit."""

import os

if os.environ.get("BENCH_LAUNCH_TIMING_DIR"):
    import atexit
    import json
    import sys
    import time

    from hal.cuda import claim as _claim
    from hal.cuda import launch as _launch

    _times: dict[str, list[float]] = {"launch": [], "claim": []}

    def _timed(cls, attr: str, kind: str) -> None:
        inner = getattr(cls, attr)
        out = _times[kind]

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                out.append((time.perf_counter() - start) * 1e6)

        setattr(cls, attr, timed)

    _timed(_launch.PackedLauncher, "__call__", "launch")
    _timed(_claim.ContextClaim, "__call__", "claim")

    def _write() -> None:
        path = os.path.join(os.environ["BENCH_LAUNCH_TIMING_DIR"], f"launches_{os.getpid()}.json")
        with open(path, "w") as f:
            json.dump({"argv": sys.argv, **_times}, f)

    atexit.register(_write)
