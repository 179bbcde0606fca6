"""What a second process's kernel costs the GPU when it arrives while another process's
work runs (two CUDA contexts, time-sliced; no xsched involved).

Process a runs 1 ms spin kernels back to back, two in flight, as a level-1 queue at
threshold 2 does. Process b, started at the same moment, launches a burst of `K` such
kernels every `P` ms and waits for each burst. Each kernel counts as the same amount of
work, so the GPU's work done per second (kernels of a and b, against a alone) shows what
the overlaps cost: `lost per burst` is the GPU time that a's and b's kernels together
fell short of a alone, divided by b's bursts (a alone keeps the GPU busy but for its
launches' gaps). It is what one hand-over between two
processes at level 1 costs when the outgoing queue still has work in flight (UP's
pairs, bench/cuda_bandwidth_2proc.py). With --mps both processes are clients of one MPS
server, which joins their contexts.

`--handover gpu` runs each pattern a second time with the hand-over done on the GPU, as
xsched could do it (docs/architecture.md, "A hand-over's cost at level 1"): at each
burst a stops launching, and a one-thread kernel behind its last kernel in flight writes
the hand-over's number to a word of shared host memory, both processes' streams wait on
that word (`cuStreamWaitValue64`): b's burst starts when a's work drains, and a's next
kernels when b's burst is done, with no host in between.
Usage: python bench/cuda_context_overlap.py [--duration-s 3] [--rounds 2] [--mps] [--handover gpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from cuda_common import ROOT, results_name, table, write
from cuda_procs import children_env, device_info

# (every P ms, a burst of K kernels) of process b; None: process a alone
PATTERNS: tuple[tuple[float, int] | None, ...] = (None, (10.0, 1), (5.0, 1), (20.0, 4))
KERNEL_US = 1000.0
START_DELAY_S = 6.0  # both processes open CUDA and warm up before the common start


def lost_per_burst(alone_rate: float, pair_rate: float, wall_s: float, bursts: int) -> float:
    """Seconds of GPU time lost per burst of b: the pair's kernels per second (the same
    kernel in both processes) fell short of a alone by this fraction over `wall_s`."""
    if bursts <= 0 or alone_rate <= 0:
        raise ValueError("no burst of b ran, or a alone did nothing")
    return (1 - pair_rate / alone_rate) * wall_s / bursts


_SIGNAL_SRC = r"""
extern "C" __global__ void xs_signal(unsigned long long* word, unsigned long long value) {
  *(volatile unsigned long long*)word = value;
  __threadfence_system();
}
"""


class _Word:
    """A uint64 in shared host memory (a file under /dev/shm), mapped into this process's
    CUDA context: the hand-over's number. A kernel writes it; streams wait on it."""

    def __init__(self, path: str) -> None:
        import mmap
        import os

        import cupy

        from hal.cuda.gate import CU_STREAM_WAIT_VALUE_GEQ, wait_value64
        from hal.cuda.hwqueue import _HOST_REGISTER_MAPPED, _HOST_REGISTER_PORTABLE

        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(fd, 4096)
        self._map = mmap.mmap(fd, 4096)
        os.close(fd)
        self.words = np.frombuffer(self._map, dtype=np.uint64)
        cupy.cuda.runtime.hostRegister(self.words.ctypes.data, 4096, _HOST_REGISTER_PORTABLE | _HOST_REGISTER_MAPPED)
        self.ptr = self.words.ctypes.data  # UVA: the same address on the device (as hal.board's)
        self._ptr_arg = np.uint64(self.ptr)  # the signal kernel's first argument, made once
        self._wait, self._geq = wait_value64(), CU_STREAM_WAIT_VALUE_GEQ
        if self._wait is None:
            raise SystemExit("--handover gpu: this driver cannot wait on memory (cuStreamWaitValue64)")
        self._signal = cupy.RawKernel(_SIGNAL_SRC, "xs_signal")

    def signal(self, stream, value: int) -> None:
        """Behind the work on `stream`: the word becomes `value` once that work is done."""
        with stream:
            self._signal((1,), (1,), (self._ptr_arg, np.uint64(value)))

    def hold(self, stream, value: int) -> None:
        """What `stream` runs next waits until the word is at least `value`."""
        rc = self._wait(stream.ptr, self.ptr, value, self._geq)
        if rc != 0:
            raise RuntimeError(f"cuStreamWaitValue64 failed with CUDA error {rc}")


def child(role: str, t0: float, duration_s: float, every_ms: float, burst: int, word_path: str | None) -> None:
    """One process: `a` keeps two kernels in flight, `b` a burst every `every_ms`; with
    `word_path` they hand the GPU over on it (burst k: a signals 2k+1, b waits for it and
    signals 2k+2, which a waits for)."""
    import cupy

    from hal.cuda import CudaDevice

    spin = CudaDevice.open(0).spin
    cmd = spin.command(KERNEL_US)
    stream = cupy.cuda.Stream(non_blocking=True)
    word = _Word(word_path) if word_path else None

    def launch() -> cupy.cuda.Event:
        spin.kernel.launch_plain(cmd.grid, cmd.block, cmd.args, cmd.shared_mem, stream, 0)
        done = cupy.cuda.Event(disable_timing=True)
        done.record(stream)
        return done

    launch().synchronize()  # the module loads, the clocks ramp
    while time.monotonic() < t0:
        time.sleep(0.001)
    end, kernels, bursts = t0 + duration_s, 0, 0
    if role == "a":
        in_flight: list = []
        k, due = 0, (t0 if every_ms > 0 else float("inf"))
        while time.monotonic() < end:
            if word is not None and time.monotonic() >= due:  # hand the GPU to b's burst k
                word.signal(stream, 2 * k + 1)
                word.hold(stream, 2 * k + 2)
                k, due = k + 1, due + every_ms / 1e3
            while len(in_flight) < 2:
                in_flight.append(launch())
            in_flight.pop(0).synchronize()
            kernels += 1
        for done in in_flight:
            done.synchronize()
            kernels += 1
        if word is not None:
            word.signal(stream, 2 * k + 1)  # b's last burst must not wait for a's next
    else:
        due = t0
        while time.monotonic() < end - 2 * burst * KERNEL_US / 1e6:
            while time.monotonic() < due:
                time.sleep(0.0002)
            if word is not None:
                word.hold(stream, 2 * bursts + 1)
            last = [launch() for _ in range(burst)][-1]
            if word is not None:
                word.signal(stream, 2 * bursts + 2)
            last.synchronize()
            kernels, bursts, due = kernels + burst, bursts + 1, due + every_ms / 1e3
        if word is not None:
            word.signal(stream, 2 * bursts + 2 + 2**40)  # a waits for no more bursts
            stream.synchronize()
    print(json.dumps({"role": role, "kernels": kernels, "bursts": bursts, "wall_s": time.monotonic() - t0}))


def run_pattern(pattern: tuple[float, int] | None, duration_s: float, env: dict, gpu_handover: bool) -> dict:
    t0 = time.monotonic() + START_DELAY_S
    every, burst = pattern if pattern is not None else (0.0, 0)
    roles = ["a"] if pattern is None else ["a", "b"]
    with tempfile.TemporaryDirectory(prefix="xs-word-", dir="/dev/shm") as tmp:
        word = ["--word", f"{tmp}/word"] if gpu_handover and pattern is not None else []
        procs = [subprocess.Popen([sys.executable, __file__, "--child", r, "--t0", repr(t0), "--duration-s", str(duration_s),
                                   "--every-ms", str(every), "--burst", str(burst), *word], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in roles]  # fmt: skip
        rows = {}
        for role, proc in zip(roles, procs, strict=True):
            out, err = proc.communicate(timeout=duration_s + 120)
            if proc.returncode != 0:
                raise RuntimeError(f"process {role} failed ({proc.returncode}): {err[-2000:]}")
            rows[role] = json.loads(out.strip().splitlines()[-1])
    b = rows.get("b", {"kernels": 0, "bursts": 0})
    wall = rows["a"]["wall_s"]
    return {"rate": (rows["a"]["kernels"] + b["kernels"]) / wall, "wall_s": wall, "bursts": b["bursts"],
            "a_kernels": rows["a"]["kernels"], "b_kernels": b["kernels"]}  # fmt: skip


def label(pattern: tuple[float, int] | None, gpu_handover: bool = False) -> str:
    if pattern is None:
        return "a_alone"
    return f"b_every_{pattern[0]:g}ms_burst_{pattern[1]}" + ("_gpu_handover" if gpu_handover else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration-s", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--mps", action="store_true", help="both processes clients of one MPS server")
    p.add_argument("--handover", choices=("none", "gpu"), default="none",
                   help="gpu: also run each pattern with the hand-over on the GPU (see above)")
    p.add_argument("--save-as", type=results_name, default=None, help="results file name (without .json)")
    p.add_argument("--word", help=argparse.SUPPRESS)
    p.add_argument("--child", choices=("a", "b"), help=argparse.SUPPRESS)
    p.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    p.add_argument("--every-ms", type=float, default=10.0, help=argparse.SUPPRESS)
    p.add_argument("--burst", type=int, default=1, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if not a.duration_s > 0:
        p.error(f"--duration-s must be > 0, got {a.duration_s}")
    if a.rounds < 1:
        p.error(f"--rounds must be >= 1, got {a.rounds}")
    if a.child:
        child(a.child, a.t0, a.duration_s, a.every_ms, a.burst, a.word)
        return 0
    with children_env(a.mps) as env:
        runs: dict[str, list[dict]] = {}
        for r in range(a.rounds):
            for pattern in PATTERNS:  # interleaved, round by round
                for gpu in (False, True) if a.handover == "gpu" and pattern is not None else (False,):
                    runs.setdefault(label(pattern, gpu), []).append(run_pattern(pattern, a.duration_s, env, gpu))
                    print(f"round {r + 1}", label(pattern, gpu), runs[label(pattern, gpu)][-1], flush=True)
        dev = device_info()
    alone = statistics.median(x["rate"] for x in runs["a_alone"])
    results, rows = {}, []
    for name, xs in runs.items():
        rate = statistics.median(x["rate"] for x in xs)
        entry = {"kernels_per_s": rate, "vs_a_alone": rate / alone, "runs": xs}
        if name != "a_alone":
            lost = [lost_per_burst(alone, x["rate"], x["wall_s"], x["bursts"]) for x in xs]
            entry["lost_us_per_burst"] = statistics.median(lost) * 1e6
            entry["lost_us_per_burst_runs"] = [v * 1e6 for v in lost]
        results[name] = entry
        rows.append([name, rate, rate / alone, entry.get("lost_us_per_burst", "-")])
    name = a.save_as or f"cuda_context_overlap{'_mps' if a.mps else ''}{'_handover' if a.handover == 'gpu' else ''}"
    setup = "two processes, native CuPy spin kernels, no xsched" + ("; MPS clients" if a.mps else "")
    path = write(name, dev, vars(a), results, setup=setup)
    print(table(f"A second context's kernels beside running work{' (MPS)' if a.mps else ''}, on {dev.info.name}, "
                f"median of {a.rounds} -> {path}",
                ["config", "kernels/s", "vs a alone", "lost us per burst"], rows))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
