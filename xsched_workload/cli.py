"""xsched-workload: XQueues under load on a device, one thread per queue.

Example:
  XSCHED_POLICY=HPF xsched-workload --device sim --duration-s 5 \\
    --queue name=fg,priority=10,period_ms=20,commands=10,command_us=500 \\
    --queue name=bg,priority=0,commands=10,command_us=500 --json
  xsched-workload --device cuda:0 --queue name=infer,kind=dnn,layers=8,priority=10 \
    --queue name=train,kind=dnn,layers=16

SIGTERM stops it as Ctrl-C does: each queue finishes the task it is running, the queues
close (their commands drain) and the summaries print. A process killed with commands in
flight leaves the device to clean up after it: an MPS server refused new clients for a
moment then ("busy or unavailable", seen on the H100).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading

from hal import DEVICE_NAMES, DeviceError, HalError, open_device
from hal.anticipation import lead_us as board_lead_us
from hal.board import enabled as board_enabled
from hal.sharing import mode as park_mode
from preempt import PreemptError
from preempt.config import SchedulerKind
from preempt.runtime import Runtime
from xsched_workload.live import LiveView
from xsched_workload.runner import QueueLoad, TaskRecord, run_loads
from xsched_workload.spec import KEYS, SpecError, parse_queue_spec
from xsched_workload.tasks import task_of
from xschedd.policy import PolicyError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xsched-workload",
        description="Run periodic or back-to-back tasks on XQueues (or native queues).",
        epilog=f"--queue keys: {', '.join(KEYS)}. Scheduling comes from XSCHED_* variables "
        "(e.g. XSCHED_POLICY=HPF).",
    )
    parser.add_argument("--device", default="sim", help=f"one of {', '.join(DEVICE_NAMES)}")
    parser.add_argument("--duration-s", type=float, default=5.0, help="how long to run (s)")
    parser.add_argument(
        "--queue", action="append", default=[], metavar="KEY=VALUE,...", help="add one queue"
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON line per task, then summaries")
    out.add_argument("--live", action="store_true", help="a live text table of the queues")
    parser.add_argument(
        "--native", action="store_true", help="bare hardware queues, no XQueue (the baseline)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.queue:
        parser.error("at least one --queue is needed")
    if not args.duration_s > 0:
        parser.error(f"--duration-s must be > 0, got {args.duration_s}")
    try:
        specs = [parse_queue_spec(text, i) for i, text in enumerate(args.queue)]
    except SpecError as exc:
        parser.error(str(exc))
    if len({s.name for s in specs}) != len(specs):
        parser.error("queue names must be distinct")
    try:
        runtime = None if args.native else Runtime()
    except (PreemptError, PolicyError) as exc:
        parser.error(str(exc))
    if args.device not in DEVICE_NAMES and not re.fullmatch(r"cuda:\d+", args.device):
        parser.error(f"--device {args.device!r}: choose one of {', '.join(DEVICE_NAMES)}")
    try:
        board_enabled()  # XSCHED_CUDA_BOARD(_LEAD_US) and XSCHED_CUDA_PARK: bad input, whatever the device
        board_lead_us()
        park_mode()
    except DeviceError as exc:
        parser.error(str(exc))
    if not args.device.startswith("cuda:") and any(s.guard != "auto" for s in specs):
        parser.error(f"--queue guard=on is for CUDA devices (--device cuda:N), not {args.device!r}")
    try:
        device = open_device(args.device)
        loads = []
        for spec in specs:
            hwq = device.create_queue(guard=True) if spec.guard == "on" else device.create_queue()
            task = task_of(spec.kind, device, commands=spec.commands, command_us=spec.command_us,
                           layers=spec.layers)  # fmt: skip
            if runtime is None:
                if spec.priority is not None:  # native: the hardware's own priorities, if any
                    hwq.set_priority(spec.priority)
                loads.append(QueueLoad(spec, hwq, task))
                continue
            xq = runtime.create_xqueue(
                hwq,
                name=spec.name,
                level=spec.level,
                threshold=spec.threshold,
                batch_size=spec.batch_size,
                priority=spec.priority,
                utilization=spec.utilization,
                timeslice_us=spec.timeslice,
                deadline_us=spec.deadline,
                laxity_us=spec.laxity,
            )
            loads.append(QueueLoad(spec, xq, task))
    except (PreemptError, PolicyError, ValueError) as exc:
        parser.error(str(exc))
    except (DeviceError, HalError) as exc:
        print(f"xsched-workload: {exc}", file=sys.stderr)
        return 1
    if runtime is not None and runtime.config.scheduler is SchedulerKind.APP:
        if any(s.priority is not None or s.utilization is not None for s in specs):
            print(
                "xsched-workload: note: XSCHED_SCHEDULER=APP, so hints have no effect; "
                "set XSCHED_POLICY (e.g. HPF) to schedule these queues",
                file=sys.stderr,
            )
    return _run(args, loads, runtime)


def _run(args: argparse.Namespace, loads: list[QueueLoad], runtime: Runtime | None) -> int:
    lock = threading.Lock()

    def on_task(record: TaskRecord) -> None:
        if args.json:
            line = json.dumps({
                "queue": record.queue, "task": record.task, "latency_ms": round(record.latency_s * 1e3, 4),
                "end_s": round(record.end_s, 6),  # time.monotonic(): comparable across processes
            })  # fmt: skip
            with lock:
                print(line, flush=True)

    view = None
    if args.live:
        policy = runtime.config.policy if runtime and runtime.config.policy else "-"
        mode = "native" if runtime is None else f"scheduler={runtime.config.scheduler.value} policy={policy}"
        view = LiveView(loads, f"xsched-workload  device={args.device}  {mode}")
        view.start()
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():  # (a handler can only go there)
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    process = run_loads(loads, args.duration_s, on_task, stop)
    if view is not None:
        view.stop()
    for load in loads:
        if hasattr(load.target, "close"):
            load.target.close()
    for load in loads:
        summary = load.summary()
        if args.json:  # (the process's figures in every queue's line: a line per queue, as before)
            print(json.dumps({**summary.as_json(), "process": process.as_json()}), flush=True)
        else:
            print(summary.text())
    if not args.json:
        print(process.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
