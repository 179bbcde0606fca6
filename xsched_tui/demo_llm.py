"""An LLM-like workload for the demo: prefill and decode XQueues plus KV-cache gauges.

Requests arrive at random; each is a prefill task (commands proportional to its prompt)
then decode steps for the running batch (one command per step). KV blocks are allocated
16 tokens at a time and freed when a request finishes; the agent reports
`kv_blocks_used` / `kv_blocks_total` (preempt.agent.Agent.set_gauge), which xsched-tui
draws as a bar. Run with XSCHED_SCHEDULER=GLB so xschedd schedules it.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass

from hal import HwCommand, open_device
from preempt.runtime import Runtime
from xsched_tui.records import KV_TOTAL_GAUGE, KV_USED_GAUGE

BLOCK_TOKENS = 16


@dataclass
class Request:
    prompt: int
    target: int
    generated: int = 0

    @property
    def blocks(self) -> int:
        return -(-(self.prompt + self.generated) // BLOCK_TOKENS)


def run_task(xq, commands: int, command_us: float) -> None:
    last = None
    for _ in range(commands):
        last = xq.submit(HwCommand(command_us))
    xq.wait(last)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="xsched-demo-llm", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="sim")
    p.add_argument("--duration-s", type=float, default=600.0)
    p.add_argument("--kv-blocks", type=int, default=2048)
    p.add_argument("--priority", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    runtime = Runtime()
    device = open_device(args.device)
    prefill = runtime.create_xqueue(device.create_queue(), name="llm-prefill",
                                    priority=args.priority, level=2)
    decode = runtime.create_xqueue(device.create_queue(), name="llm-decode",
                                   priority=args.priority, level=2)
    gauge = getattr(runtime.scheduler, "set_gauge", None)  # only the GLB agent reports gauges
    running: list[Request] = []
    deadline = time.monotonic() + args.duration_s
    while time.monotonic() < deadline:
        used = sum(r.blocks for r in running)
        if rng.random() < 0.3 and used < args.kv_blocks * 0.9:
            req = Request(prompt=rng.randint(64, 1024), target=rng.randint(32, 512))
            run_task(prefill, max(1, req.prompt // 128), 400.0)
            running.append(req)
        if running:
            run_task(decode, 1, 150.0 + 5.0 * len(running))
            for r in running:
                r.generated += 1
            running = [r for r in running if r.generated < r.target]
        else:
            time.sleep(0.01)
        if gauge is not None:
            gauge(KV_USED_GAUGE, float(sum(r.blocks for r in running)))
            gauge(KV_TOTAL_GAUGE, float(args.kv_blocks))
    for xq in (prefill, decode):
        xq.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
