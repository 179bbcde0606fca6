"""Control plane: from an XQueue's status change to the operation applied in the target process.

"Applied" is timed two ways through the daemon. The operation: the queue's SUSPENDED or
RESUMED event (done by the target's agent thread). The suspend gate (xschedd/gates.py):
for a suspend, the daemon's write of the queue's byte, from which its launcher launches
nothing more; for a resume, the daemon's clear of it, from which the queue's next
completion launches again, or, for a queue that the gate alone kept from launching (it
had room in flight: *stalled*), its next launch (the agent's gate thread pumps it). The
targets' hardware queues log their launches and completions to tell the two apart.

A trigger XQueue (priority 10) becomes ready; under HPF every target XQueue (priority 0,
kept busy) must then be suspended, and resumed when the trigger goes idle. We time, on
the machine's monotonic clock (shared by all processes), trigger-ready -> target
suspended and trigger-idle -> target resumed, through xschedd (GLB, targets in P
separate processes) and through the in-process local scheduler (LCL, all in one
process), for P x Q = 1x1, 10x10 and 100x10; then, with 100 XQueues flat out, the status
events per second the daemon takes in, its decisions, CPU and RSS.

Usage: python bench/control_plane.py [--rounds 40] [--configs 1x1,10x10,100x10]
       [--events-s 5 (0: skip the sustained run)] [--no-save | --save-as NAME]
       [--cpu-latency-us US (every configuration again with xschedd --cpu-latency-us US)]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import psutil
from common import ROOT, stop_sim, write_results

from hal import HwCommand
from hal.sim import SimDevice
from hal.stats import percentile
from preempt import EventKind
from preempt.agent import Agent
from preempt.runtime import Runtime
from protos.xsched.v1 import control_pb2 as cpb
from protos.xsched.v1 import control_pb2_grpc
from xschedd.agents import OPERATION_DELAY_S
from xschedd.launch import DaemonProcess

BUSY_US = 200_000.0  # target commands: long, so targets stay ready all along
ROUND_GAP_S = (0.08, 0.12)  # the trigger's rounds, far apart: no overlap


def target_commands(rounds: int) -> int:
    """Commands for each target to stay busy through all rounds and then some: one whose
    commands ran out would have nothing to launch at a resume, which would then read as
    applied by the operation, 10 ms late."""
    return 20 + int(rounds * ROUND_GAP_S[1] * 1e6 / BUSY_US)


# -- the processes ---------------------------------------------------------------------


def role_process(targets: int, rounds: int, trigger: bool) -> int:
    """Run `targets` busy XQueues for `rounds` (and, with `trigger`, the trigger's rounds);
    print timings as JSON.

    Targets stop when stdin closes (the benchmark's signal), or after the trigger's rounds.
    """
    runtime = Runtime()
    device = SimDevice.local()
    stamps: dict[str, list[float]] = {"suspended": [], "resumed": [], "gated": []}
    ungated: list[tuple[float, float, int]] = []  # (RESUMED seen, gate cleared, XQueue id)
    logs: dict[int, list[tuple[float, int]]] = {}  # XQueue id -> (time, +1 launch / -1 completion)
    lock = threading.Lock()
    agent = runtime.scheduler if isinstance(runtime.scheduler, Agent) else None

    def listener(event) -> None:
        now = time.monotonic()
        if event.kind in (EventKind.SUSPENDED, EventKind.RESUMED):
            set_at, cleared_at = agent.gate_stamps(event.info.xqueue_id) if agent is not None else (None, None)
            with lock:
                stamps[event.kind.value].append(now)
                if event.kind is EventKind.SUSPENDED and set_at is not None:
                    stamps["gated"].append(min(set_at, now))  # launching stopped then
                if event.kind is EventKind.RESUMED and cleared_at is not None:
                    ungated.append((now, cleared_at, event.info.xqueue_id))

    for i in range(targets):
        hwq = device.create_queue()
        log = logged(hwq)
        xq = runtime.create_xqueue(hwq, name=f"t{i}", priority=0, threshold=1)
        logs[xq.id] = log
        xq.add_listener(listener)
        for _ in range(target_commands(rounds)):
            xq.submit(HwCommand(BUSY_US))
    print(json.dumps({"ready": os.getpid()}), flush=True)
    triggers: list[float] = []
    idles: list[float] = []
    if trigger:
        # its own device: we time the control plane, not the targets' commands ahead of it
        fg = runtime.create_xqueue(SimDevice.local().create_queue(), name="trigger", priority=10)
        ready_since = [0.0]

        def on_trigger(event) -> None:
            # The idle moment as the XQueue saw it (ready_since + its busy span), not when
            # this listener runs: the agent's listener, which sends the news, runs first,
            # and on 2 cores a target could apply the resume before we got here.
            if event.kind is EventKind.READY and event.info.ready_since is not None:
                ready_since[0] = event.info.ready_since
            elif event.kind is EventKind.IDLE and event.latency_s is not None:
                idles.append(ready_since[0] + event.latency_s)

        fg.add_listener(on_trigger)
        sys.stdin.readline()  # the benchmark says go once every target is registered
        for _ in range(rounds):
            time.sleep(random.uniform(*ROUND_GAP_S))
            triggers.append(time.monotonic())
            fg.wait(fg.submit(HwCommand(2000.0)))
        time.sleep(0.1)
    else:
        sys.stdin.read()
    with lock:
        stamps["ungated"], stamps["ungated_stalled"] = gate_resumes(ungated, logs)
        print(json.dumps({"triggers": triggers, "idles": idles, **stamps}), flush=True)
    os._exit(0)  # targets still hold long commands: no need to drain them


def logged(hwq):
    """Log the hardware queue's launches and completions (monotonic time, +1 / -1)."""
    log: list[tuple[float, int]] = []
    launch = hwq.launch

    def logged_launch(cmd, on_complete=None):
        log.append((time.monotonic(), 1))
        if on_complete is None:
            return launch(cmd, None)

        def done(c):
            log.append((time.monotonic(), -1))
            on_complete(c)

        return launch(cmd, done)

    hwq.launch = logged_launch
    return log


def gate_resumes(ungated, logs) -> tuple[list[float], list[float]]:
    """When each resume through the gate took effect: the clear, for a queue with a
    command in flight then (its completion launches the next: threshold 1); else (stalled)
    its next launch. Returns (all, the stalled ones)."""
    applied, stalled = [], []
    for seen, cleared, xq_id in ungated:
        if not 0 <= seen - cleared < 0.05:  # not this resume's clear
            continue
        log = logs[xq_id]
        if sum(d for t, d in log if t < cleared) > 0:
            applied.append(cleared)
            continue
        at = min((t for t, d in log if d == 1 and t >= cleared), default=seen)
        applied.append(min(at, seen))
        stalled.append(applied[-1])
    return applied, stalled


# -- the benchmark ---------------------------------------------------------------------


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, cwd=ROOT,
    )  # fmt: skip


def read_json(proc: subprocess.Popen) -> dict:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"process {proc.pid} ended early:\n{proc.stderr.read()}")
    return json.loads(line)


def latencies(trigger_times: list[float], stamps: list[float]) -> list[float]:
    """For each trigger time, the delay to each process's first stamp at or after it."""
    out = []
    bounds = trigger_times[1:] + [float("inf")]
    for t0, t1 in zip(trigger_times, bounds):
        out += [s - t0 for s in stamps if t0 <= s < t1]
    return out


def run_config(procs: int, per_proc: int, rounds: int, base_env: dict, daemon_sock: Path | None):
    """One measurement; daemon_sock None means LCL: everything in one process."""
    env = dict(base_env)
    if daemon_sock is None:
        env.update(XSCHED_POLICY="HPF")
        children = [spawn(["--role", str(procs * per_proc), str(rounds), "trigger"], env)]
        trigger = children[0]
    else:
        env.update(XSCHED_SCHEDULER="GLB", XSCHED_SOCKET=str(daemon_sock))
        children = [spawn(["--role", str(per_proc), str(rounds), "targets"], env) for _ in range(procs)]
        trigger = spawn(["--role", "0", str(rounds), "trigger"], env)
        children.append(trigger)
    for child in children:
        read_json(child)  # ready
    if daemon_sock is not None:
        stub = control_pb2_grpc.ControlServiceStub(grpc.insecure_channel(f"unix:{daemon_sock}"))
        deadline = time.monotonic() + 60
        while len(stub.ListXQueues(cpb.ListXQueuesRequest(), timeout=5).xqueues) < procs * per_proc + 1:
            if time.monotonic() > deadline:
                raise RuntimeError("agents did not register in 60 s")
            time.sleep(0.05)
        time.sleep(0.3)
    assert trigger.stdin is not None
    trigger.stdin.write("go\n")
    trigger.stdin.flush()
    result = read_json(trigger)
    kinds = ("suspended", "resumed", "gated", "ungated", "ungated_stalled")
    stamps = {kind: list(result[kind]) for kind in kinds}
    for child in children:
        if child is trigger:
            continue
        child.stdin.close()
        data = read_json(child)
        for kind in stamps:
            stamps[kind] += data[kind]
        child.wait(30)
    trigger.wait(30)
    suspend = latencies(result["triggers"], sorted(stamps["suspended"]))
    resume = latencies(result["idles"], sorted(stamps["resumed"]))
    gated = latencies(result["triggers"], sorted(stamps["gated"]))
    ungated = latencies(result["idles"], sorted(stamps["ungated"]))
    stalled = latencies(result["idles"], sorted(stamps["ungated_stalled"]))
    expected = rounds * procs * per_proc
    return {
        # the daemon's clear of the gate (or, stalled, the launch after it): level 1 resumed
        "ungated_p50_ms": percentile(ungated, 50) * 1e3 if ungated else None,
        "ungated_p99_ms": percentile(ungated, 99) * 1e3 if ungated else None,
        "ungated_seen": len(ungated),
        "stalled_seen": len(stalled),
        "stalled_p50_ms": percentile(stalled, 50) * 1e3 if stalled else None,
        "stalled_p99_ms": percentile(stalled, 99) * 1e3 if stalled else None,
        "suspends_total": len(stamps["suspended"]),
        # the daemon's gate write: from then on the target launches nothing (level 1 applied)
        "gated_p50_ms": percentile(gated, 50) * 1e3 if gated else None,
        "gated_p99_ms": percentile(gated, 99) * 1e3 if gated else None,
        "gated_seen": len(gated),
        "suspend_p50_ms": percentile(suspend, 50) * 1e3,
        "suspend_p99_ms": percentile(suspend, 99) * 1e3,
        "resume_p50_ms": percentile(resume, 50) * 1e3,
        "resume_p99_ms": percentile(resume, 99) * 1e3,
        "operations_seen": len(suspend),
        "operations_expected": expected,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def events_taken(metrics_port: int) -> float:
    """The daemon's count of status events received from agents (its Prometheus metric)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("xsched_agent_events_total "):
                return float(line.split()[1])
    return 0.0


def events_per_second(
    base_env: dict, daemon_sock: Path, daemon: psutil.Process, seconds: float, metrics_port: int, tmp: Path
):
    """10 processes x 10 XQueues of 1-command tasks, flat out: READY/IDLE events per second
    offered (two per task) and taken in by the daemon; agents coalesce what it cannot take."""
    env = {**base_env, "XSCHED_SCHEDULER": "GLB", "XSCHED_SOCKET": str(daemon_sock)}
    queues = [arg for i in range(10) for arg in ("--queue", f"name=q{i},commands=1,command_us=20")]
    outs = [tmp / f"sustained-{i}.jsonl" for i in range(10)]
    procs = []
    for out in outs:
        with open(out, "wb") as f:  # a file, not a pipe: a full pipe would stall the workload
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "xsched_workload.cli", "--device", "sim:local",
                 "--duration-s", str(seconds + 4), "--json", *queues],
                stdout=f, stderr=subprocess.DEVNULL, env=env, cwd=ROOT,
            ))  # fmt: skip
    stub = control_pb2_grpc.ControlServiceStub(grpc.insecure_channel(f"unix:{daemon_sock}"))
    time.sleep(3.0)  # start-up
    d0 = stub.GetPolicy(cpb.GetPolicyRequest(), timeout=5).decisions
    e0 = events_taken(metrics_port)
    daemon.cpu_percent()
    t0 = time.monotonic()
    time.sleep(seconds)
    d1 = stub.GetPolicy(cpb.GetPolicyRequest(), timeout=5).decisions
    e1 = events_taken(metrics_port)
    elapsed = time.monotonic() - t0
    cpu = daemon.cpu_percent()
    rss = daemon.memory_info().rss
    tasks = 0
    for proc, out in zip(procs, outs):
        proc.wait(60)
        lines = map(json.loads, out.read_text().splitlines())
        tasks += sum(line["tasks"] for line in lines if line.get("summary"))
    return {
        "decisions_per_s": (d1 - d0) / elapsed,
        "events_taken_per_s": (e1 - e0) / elapsed,
        "events_offered_per_s": 2 * tasks / (seconds + 4),
        "daemon_cpu_percent": cpu,
        "daemon_rss_mb": rss / 2**20,
    }


def measure(configs, rounds: int, base_env: dict, tmp: Path, cpu_latency_us: int | None, events_s: float):
    """Every configuration through a fresh daemon (with `--cpu-latency-us`, if given: the
    bound is the whole machine's, so the local scheduler's rows of this pass run under it
    too) and the local scheduler; then, with events_s, the sustained run."""
    sock = tmp / "xschedd.sock"
    metrics_port = free_port()
    bound_args = [] if cpu_latency_us is None else ["--cpu-latency-us", str(cpu_latency_us)]
    daemon = DaemonProcess(
        sock, tmp / "state", tmp / "xschedd.log", log_level="WARNING", env=base_env,
        args=["--policy", "HPF", "--metrics-port", str(metrics_port), *bound_args],
    )  # fmt: skip
    daemon.start(wait=False)
    results: dict[str, dict] = {}
    try:
        daemon.wait_serving(20)
        proc = psutil.Process(daemon.pid)
        for procs, per_proc in configs:
            name = f"{procs}x{per_proc}"
            proc.cpu_percent()
            glb = run_config(procs, per_proc, rounds, base_env, sock)
            glb["daemon_cpu_percent"] = proc.cpu_percent()
            glb["daemon_rss_mb"] = proc.memory_info().rss / 2**20
            lcl = run_config(procs, per_proc, rounds, base_env, None)
            results[name] = {"daemon": glb, "local": lcl, "cpu_latency_us": cpu_latency_us}
            print(f"{name}{'' if cpu_latency_us is None else f' (CPU wake-up <= {cpu_latency_us} us)'}: "
                  f"xschedd suspend P99 {glb['gated_p99_ms'] or float('nan'):.2f} ms at the gate, "
                  f"local {lcl['suspend_p99_ms']:.2f} ms", file=sys.stderr, flush=True)  # fmt: skip
        if events_s > 0:
            results["sustained"] = events_per_second(base_env, sock, proc, events_s, metrics_port, tmp)
    finally:
        daemon.stop(timeout_s=15)
        stop_sim(tmp / "sim.sock")
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--role":
        return role_process(int(argv[1]), int(argv[2]), argv[3] == "trigger")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--configs", default="1x1,10x10,100x10")
    parser.add_argument("--events-s", type=float, default=5.0)
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--save-as", default="control_plane", metavar="NAME",
                        help="write bench/results/NAME.json (e.g. control_plane_16core)")
    parser.add_argument("--cpu-latency-us", type=int, metavar="US",
                        help="run every configuration again with xschedd --cpu-latency-us US (root)")
    args = parser.parse_args(argv)
    if args.cpu_latency_us is not None and args.cpu_latency_us < 0:
        parser.error(f"--cpu-latency-us must be >= 0, got {args.cpu_latency_us}")
    configs = [tuple(int(x) for x in c.split("x")) for c in args.configs.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="xcp-", dir="/tmp"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("XSCHED_")}
    base_env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        XSCHED_SIM_SOCKET=str(tmp / "sim.sock"),
    )
    bounds = [None] if args.cpu_latency_us is None else [None, args.cpu_latency_us]
    results: dict[str, dict] = {}
    for bound in bounds:  # without the bound, then with it (the sustained run only without)
        suffix = "" if bound is None else f" cpu<={bound}us"
        part = measure(configs, args.rounds, base_env, tmp, bound, args.events_s if bound is None else 0)
        results.update({name + suffix: value for name, value in part.items()})
    print("\nstatus change -> applied in the target process (HPF; ms): through xschedd at the gate")
    print("(its shared memory, xschedd/gates.py) and by the operation (the target's agent thread;")
    print(f"a gated level-1 queue's follows its gate by {OPERATION_DELAY_S * 1e3:.0f} ms), and by the local scheduler")
    print(f"{'P x Q':<16} {'path':<10} {'suspend p50':>11} {'p99':>7} {'resume p50':>11} {'p99':>7} "
          f"{'applied':>11} {'daemon CPU%':>11} {'RSS MB':>7}")  # fmt: skip
    for name, pair in results.items():
        if name == "sustained":
            continue
        g, lcl = pair["daemon"], pair["local"]
        rows = []
        if g.get("gated_p50_ms") is not None and g.get("ungated_p50_ms") is not None:
            rows.append(("gate", g["gated_p50_ms"], g["gated_p99_ms"], g["ungated_p50_ms"],
                         g["ungated_p99_ms"], g["gated_seen"]))  # fmt: skip
        rows.append(("operation", g["suspend_p50_ms"], g["suspend_p99_ms"], g["resume_p50_ms"],
                     g["resume_p99_ms"], g["operations_seen"]))  # fmt: skip
        rows.append(("local", lcl["suspend_p50_ms"], lcl["suspend_p99_ms"], lcl["resume_p50_ms"],
                     lcl["resume_p99_ms"], lcl["operations_seen"]))  # fmt: skip
        for i, (path, s50, s99, r50, r99, seen) in enumerate(rows):
            extra = (f"{g['daemon_cpu_percent']:>11.0f} {g['daemon_rss_mb']:>7.0f}"
                     if i == 0 else f"{'':>11} {'':>7}")  # fmt: skip
            print(f"{name:<16} {path:<10} {s50:>11.3f} {s99:>7.3f} {r50:>11.3f} {r99:>7.3f} "
                  f"{seen:>5}/{g['operations_expected']:<5} {extra}")  # fmt: skip
        if len(rows) == 3:
            print(f"{'':<16} xschedd at the gate / local, P99: suspend {g['gated_p99_ms'] / lcl['suspend_p99_ms']:.2f}x, "
                  f"resume {g['ungated_p99_ms'] / lcl['resume_p99_ms']:.2f}x; of the resumes, "
                  + (f"{g['stalled_seen']} stalled (pumped by the agent's gate thread): P50 "
                     f"{g['stalled_p50_ms']:.3f}, P99 {g['stalled_p99_ms']:.3f} ms"
                     if g["stalled_seen"] else "none stalled"))  # fmt: skip
    for name, pair in results.items():
        base = results.get(name.split(" ")[0])
        if pair is base or name == "sustained" or base is None:
            continue
        g, g0 = pair["daemon"], base["daemon"]
        if g.get("gated_p99_ms") and g0.get("gated_p99_ms") and g.get("ungated_p99_ms") and g0.get("ungated_p99_ms"):
            print(f"{name}: xschedd at the gate with the bound / without, P99: suspend "
                  f"{g['gated_p99_ms'] / g0['gated_p99_ms']:.2f}x, resume {g['ungated_p99_ms'] / g0['ungated_p99_ms']:.2f}x; "
                  f"local {pair['local']['suspend_p99_ms'] / base['local']['suspend_p99_ms']:.2f}x "
                  f"and {pair['local']['resume_p99_ms'] / base['local']['resume_p99_ms']:.2f}x")  # fmt: skip
    s = results.get("sustained")
    if s is not None:
        print(f"\nsustained: {s['events_offered_per_s']:,.0f} events/s offered by 100 XQueues, "
              f"{s['events_taken_per_s']:,.0f} taken in by the daemon (the rest coalesced by the "
              f"agents), {s['decisions_per_s']:,.0f} scheduling decisions/s, daemon "
              f"{s['daemon_cpu_percent']:.0f}% CPU, {s['daemon_rss_mb']:.0f} MB RSS")  # fmt: skip
    if not args.no_save:
        params = {"rounds": args.rounds, "policy": "HPF",
                  "transport": "unix socket (native agent stream)", "configs": args.configs,
                  "events_s": args.events_s, "cpu_latency_us": args.cpu_latency_us}  # fmt: skip
        path = write_results(args.save_as, "simulated XPU (sim:local per process)", params, results)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
