"""Runs the tasks of each queue on its own thread and records their latencies."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from hal import HwQueue
from hal.stats import percentile
from preempt import XQueue
from preempt.latency import LatencyStats
from xsched_workload.spec import QueueSpec
from xsched_workload.tasks import Task, spin_task


@dataclass(frozen=True)
class TaskRecord:
    queue: str
    task: int
    latency_s: float
    end_s: float  # time.monotonic() at its end: one clock for every process of the machine


@dataclass(frozen=True)
class ProcessSummary:
    """The workload process's own CPU time over its loads' run, every thread's (the
    runtime's, the device driver's waits, this tool's printing, and the start-up its
    first tasks pay): the host CPU its tasks cost, all queues' together. With --json it
    goes into every queue's summary line as `process`. Measured on the H100 host: a
    CUDA task's spinning wait is most of it, and on hosts that now and then run slow, a
    task's latency there grows with its host CPU (docs/h100-benchmarks.md)."""

    pid: int
    cpu_s: float
    wall_s: float
    tasks: int

    @property
    def cpu_us_per_task(self) -> float | None:
        return self.cpu_s / self.tasks * 1e6 if self.tasks else None

    def as_json(self) -> dict:
        per_task = self.cpu_us_per_task
        return {"pid": self.pid, "cpu_s": round(self.cpu_s, 6), "wall_s": round(self.wall_s, 6), "tasks": self.tasks,
                "cpu_us_per_task": None if per_task is None else round(per_task, 1)}  # fmt: skip

    def text(self) -> str:
        share = self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0
        line = f"process {self.pid}: {self.cpu_s:.2f} s of CPU in {self.wall_s:.2f} s ({100 * share:.0f}% of a core)"
        per_task = self.cpu_us_per_task
        return line if per_task is None else f"{line}, {per_task:.0f} us a task"


@dataclass(frozen=True)
class QueueSummary:
    queue: str
    tasks: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    throughput_tps: float
    anticipation: dict[str, int] | None = None  # HwQueue.anticipation_summary, where the queue has one

    def as_json(self) -> dict:
        row = {
            "summary": True,
            "queue": self.queue,
            "tasks": self.tasks,
            "p50_ms": round(self.p50_ms, 4),
            "p99_ms": round(self.p99_ms, 4),
            "mean_ms": round(self.mean_ms, 4),
            "throughput_tps": round(self.throughput_tps, 3),
        }
        if self.anticipation is not None:
            row["anticipation"] = self.anticipation
        return row

    def text(self) -> str:
        line = f"{self.queue}: {self.tasks} tasks, p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, "
        line += f"{self.throughput_tps:.1f} tasks/s"
        if self.anticipation is not None:
            a = self.anticipation
            line += f"; {a['arrivals_in_held_window']} of {a['arrivals']} arrivals came into a window held ahead"
        return line


class QueueLoad:
    """One queue's load: a task (its commands, then a wait), periodic or back to back.

    `target` is an XQueue (ours) or a bare HwQueue (the native baseline).
    """

    def __init__(self, spec: QueueSpec, target: XQueue | HwQueue, task: Task | None = None) -> None:
        self.spec = spec
        self.target = target
        # one task's commands; spin commands of the spec's size unless given (xsched_workload.tasks)
        self.task = task or spin_task(spec.commands, spec.command_us)
        self.latency = LatencyStats(keep=1_000_000)
        self.tasks_done = 0
        self.elapsed_s = 0.0

    def run_task(self) -> float:
        cmds = self.task()
        start = time.monotonic()
        if isinstance(self.target, XQueue):
            last = None
            for cmd in cmds:
                last = self.target.submit(cmd)
            self.target.wait(last)
        else:
            for cmd in cmds:
                self.target.launch(cmd)
            self.target.synchronize()
        return time.monotonic() - start

    def run(self, stop: threading.Event, deadline: float, on_task: Callable[[TaskRecord], None]):
        start = time.monotonic()
        period = None if self.spec.period_ms is None else self.spec.period_ms / 1000.0
        release = start
        while not stop.is_set() and time.monotonic() < deadline:
            if self.spec.tasks is not None and self.tasks_done >= self.spec.tasks:
                break
            if period is not None:
                delay = release - time.monotonic()
                if delay > 0 and stop.wait(min(delay, max(deadline - time.monotonic(), 0))):
                    break
                if time.monotonic() >= deadline:
                    break
                release += period
            latency = self.run_task()
            end = time.monotonic()
            self.latency.add(latency)
            on_task(TaskRecord(self.spec.name, self.tasks_done, latency, end))
            self.tasks_done += 1
        self.elapsed_s = time.monotonic() - start

    def summary(self) -> QueueSummary:
        samples = self.latency.samples()
        mean = sum(samples) / len(samples) if samples else float("nan")
        hwq = self.target.hwq if isinstance(self.target, XQueue) else self.target
        return QueueSummary(
            queue=self.spec.name,
            tasks=self.tasks_done,
            p50_ms=percentile(samples, 50) * 1e3,
            p99_ms=percentile(samples, 99) * 1e3,
            mean_ms=mean * 1e3,
            throughput_tps=self.tasks_done / self.elapsed_s if self.elapsed_s > 0 else 0.0,
            anticipation=hwq.anticipation_summary(),
        )


def run_loads(
    loads: list[QueueLoad],
    duration_s: float,
    on_task: Callable[[TaskRecord], None],
    stop: threading.Event | None = None,
) -> ProcessSummary:
    """Run every load on its own thread until `duration_s` passes or `stop` is set; the
    process's CPU time over that run."""
    cpu, wall = time.process_time(), time.monotonic()
    stop = stop or threading.Event()
    deadline = time.monotonic() + duration_s
    threads = [
        threading.Thread(target=load.run, args=(stop, deadline, on_task), name=load.spec.name)
        for load in loads
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.1)
    except KeyboardInterrupt:
        stop.set()
        for thread in threads:
            thread.join()
    return ProcessSummary(os.getpid(), time.process_time() - cpu, time.monotonic() - wall,
                          sum(load.tasks_done for load in loads))  # fmt: skip
