"""xsched-tui under load: 1,000 XQueues changing at 10 Hz, the console in a real pty.

A fake ControlService (the generated servicer base, in its own process, on a private
socket) streams a snapshot and then, every 1/hz s, a delta that changes every XQueue.
One XQueue (the first row) carries the tick in its name, `probe-<tick>`; the console
runs as `python -m xsched_tui.app` in a pseudo-terminal, and a reader thread timestamps
when each probe name is written to the terminal. Reported: the console's CPU use (user +
system, % of one core) and the delay from the server sending a change to the change
reaching the screen. Targets: < 25 % of one core, < 200 ms. `--runs N` repeats the
measurement and reports every run (with the machine's load average before each, since the
console shares its CPU with whatever else runs) and their ranges.

  python bench/tui_load.py [--queues 1000] [--hz 10] [--seconds 15] [--runs 5]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from concurrent import futures
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import psutil  # noqa: E402

from bench.common import write_results  # noqa: E402
from protos.xsched.v1 import control_pb2 as cpb, control_pb2_grpc, types_pb2 as pb  # noqa: E402

CPU_TARGET_PERCENT = 25.0
LATENCY_TARGET_MS = 200.0
PROBE = re.compile(rb"probe-(\d{6})")
COLUMNS, LINES = 200, 50


# -- the fake control server (runs in its own process) ----------------------------------
class LoadServicer(control_pb2_grpc.ControlServiceServicer):
    def __init__(self, queues: int, hz: float, log_path: Path) -> None:
        self.hz = hz
        self.log = open(log_path, "w", buffering=1)  # noqa: SIM115 (lives with the server)
        procs = max(1, queues // 10)
        self.views = []
        for i in range(queues):
            pid = 10_000 + i % procs
            info = pb.XQueueInfo(xqueue_id=(pid << 32) | (i + 1), name=f"q{i}", pid=pid,
                                 device="sim", state=pb.XQUEUE_STATE_READY, level=1,
                                 threshold=16, batch_size=8)
            self.views.append(cpb.XQueueView(info=info, priority=i % 7,
                                             busy=pb.LatencySummary(count=1, p50_ms=1.0, p99_ms=2.0)))
        self.views[0].info.name = "probe-000000"
        self.processes = [cpb.ProcessView(pid=10_000 + p, name=f"load{p}") for p in range(procs)]
        self.policy = cpb.PolicyInfo(name="HPF", available=["HPF", "UP", "CFS"])

    def WatchStatus(self, request, context):
        yield cpb.StatusUpdate(snapshot=cpb.Snapshot(policy=self.policy, processes=self.processes,
                                                     xqueues=self.views, share_window_s=5.0))
        period = 1.0 / self.hz
        tick = 0
        next_at = time.monotonic() + period
        while context.is_active():
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at += period
            tick += 1
            for i, v in enumerate(self.views):
                info = v.info
                info.submitted += 8 + i % 5
                info.completed = info.submitted - (i % 3)
                info.in_flight = i % 9
                info.state = pb.XQUEUE_STATE_READY if (tick + i) % 2 else pb.XQUEUE_STATE_IDLE
                v.busy.count += 1
                v.busy.p50_ms = 1.0 + (tick % 10) / 10
                v.busy.p99_ms = 2.0 + (tick % 20) / 10
                v.share = ((tick + i) % 100) / 100
            self.views[0].info.name = f"probe-{tick:06d}"
            update = cpb.StatusUpdate(delta=cpb.Delta(changed_xqueues=self.views))
            self.log.write(f"{tick} {time.monotonic():.6f}\n")
            yield update

    def GetPolicy(self, request, context):
        return self.policy


def serve(socket: Path, queues: int, hz: float, log_path: Path) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    control_pb2_grpc.add_ControlServiceServicer_to_server(LoadServicer(queues, hz, log_path), server)
    server.add_insecure_port(f"unix:{socket}")
    server.start()
    signal.signal(signal.SIGTERM, lambda *_: server.stop(0))
    server.wait_for_termination()


# -- the measurement --------------------------------------------------------------------
class ScreenReader(threading.Thread):
    """Reads the console's terminal output; notes when each probe tick first appears."""

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True, name="pty-reader")
        self.fd = fd
        self.seen: dict[int, float] = {}
        self.bytes = 0

    def run(self) -> None:
        tail = b""
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            now = time.monotonic()
            self.bytes += len(chunk)
            data = tail + chunk
            for m in PROBE.finditer(data):
                self.seen.setdefault(int(m.group(1)), now)
            tail = data[-16:]


def spawn_console(socket: Path) -> tuple[subprocess.Popen, int]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(LINES),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "xsched_tui.app", "--socket", str(socket)],
        stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True,
    )
    os.close(slave)
    return proc, master


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def measure(queues: int, hz: float, seconds: float, warmup: float) -> dict:
    load_before = round(os.getloadavg()[0], 2)
    root = Path(tempfile.mkdtemp(prefix="xtui-load-", dir="/tmp"))
    socket, log_path = root / "control.sock", root / "sends.log"
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(socket), "--queues", str(queues),
         "--hz", str(hz), "--log", str(log_path)], start_new_session=True,
    )
    console = None
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the fake control server did not start")
            time.sleep(0.05)
        console, master = spawn_console(socket)
        reader = ScreenReader(master)
        reader.start()
        ps = psutil.Process(console.pid)
        time.sleep(warmup)
        if console.poll() is not None:
            raise RuntimeError(f"xsched-tui exited with {console.returncode}")
        cpu0, wall0 = cpu_seconds(ps), time.monotonic()
        time.sleep(seconds)
        cpu1, wall1 = cpu_seconds(ps), time.monotonic()
        rss_mib = ps.memory_info().rss / 2**20
    finally:
        for proc in (console, server):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
    sends = {}
    for line in log_path.read_text().splitlines():
        tick, at = line.split()
        sends[int(tick)] = float(at)
    window = [t for t, at in sends.items() if wall0 <= at <= wall1 - 0.5]
    delays = [(reader.seen[t] - sends[t]) * 1e3 for t in window if t in reader.seen]
    if not delays:
        raise RuntimeError("no probe change reached the screen")
    cpu_percent = 100 * (cpu1 - cpu0) / (wall1 - wall0)
    return {
        "load_average_1m_before": load_before,
        "cpu_percent_of_one_core": round(cpu_percent, 1),
        "delay_ms": {
            "p50": round(percentile(delays, 50), 1),
            "p95": round(percentile(delays, 95), 1),
            "p99": round(percentile(delays, 99), 1),
            "max": round(max(delays), 1),
            "mean": round(statistics.fmean(delays), 1),
        },
        "ticks_sent": len(window),
        "ticks_shown": len(delays),
        "rss_mib": round(rss_mib, 1),
        "terminal_bytes_per_s": round(reader.bytes / (wall1 - wall0 + warmup)),
        "targets": {"cpu_percent": CPU_TARGET_PERCENT, "delay_ms": LATENCY_TARGET_MS},
        "meets_targets": cpu_percent < CPU_TARGET_PERCENT
        and percentile(delays, 99) < LATENCY_TARGET_MS,
    }


def summarize(runs: list[dict]) -> dict:
    """Every run, and the range of each headline number over them."""
    cpu = [r["cpu_percent_of_one_core"] for r in runs]
    p50 = [r["delay_ms"]["p50"] for r in runs]
    p99 = [r["delay_ms"]["p99"] for r in runs]
    return {
        "cpu_percent_of_one_core": {"min": min(cpu), "max": max(cpu)},
        "delay_p50_ms": {"min": min(p50), "max": max(p50)},
        "delay_p99_ms": {"min": min(p99), "max": max(p99)},
        "runs_meeting_targets": sum(r["meets_targets"] for r in runs),
        "targets": runs[0]["targets"],
        "meets_targets": all(r["meets_targets"] for r in runs),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--queues", type=int, default=1000)
    p.add_argument("--hz", type=float, default=10.0)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--runs", type=int, default=1, help="repeat the measurement; report all")
    p.add_argument("--no-write", action="store_true", help="print only; leave the results file")
    p.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve, args.queues, args.hz, args.log)
        return 0
    runs = []
    for i in range(args.runs):
        runs.append(measure(args.queues, args.hz, args.seconds, args.warmup))
        r = runs[-1]
        print(f"run {i + 1}/{args.runs}: cpu {r['cpu_percent_of_one_core']}% of one core, delay "
              f"P50 {r['delay_ms']['p50']} / P99 {r['delay_ms']['p99']} ms, load average "
              f"{r['load_average_1m_before']}", file=sys.stderr, flush=True)
    results = runs[0] if len(runs) == 1 else summarize(runs)
    params = {"queues": args.queues, "hz": args.hz, "seconds": args.seconds,
              "terminal": f"{COLUMNS}x{LINES} pty", "warmup_s": args.warmup, "runs": args.runs}
    print(json.dumps({"parameters": params, "results": results}, indent=2))
    if not args.no_write:
        path = write_results("tui_load", "none (console only)", params, results)
        print(f"wrote {path}")
    return 0 if results["meets_targets"] else 1


if __name__ == "__main__":
    sys.exit(main())
