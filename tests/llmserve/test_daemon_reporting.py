"""Reporting to xschedd: a real daemon and a real engine process (`llmserve bench` with the
tiny model, XSCHED_SCHEDULER=GLB). The daemon shows the engine's KV gauges on its process
and its requests' TTFT and TPOT as task latencies of the `llmserve-ttft` and
`llmserve-tpot` XQueues, in ListProcesses / ListXQueues and on the metrics endpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

# `python -m pytest` has the checkout on sys.path; a bare `pytest` does not.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from llmserve.telemetry import KV_SWAPPED_GAUGE, KV_TOTAL_GAUGE, KV_USED_GAUGE
from protos.xsched.v1 import control_pb2 as cpb
from tests.daemon.conftest import (  # noqa: F401 (make_env and short_dir: fixtures)
    ROOT,
    _env,
    free_port,
    make_env,
    short_dir,
    wait_for,
)
from xsched_tui.records import KV_TOTAL_GAUGE as TUI_TOTAL
from xsched_tui.records import KV_USED_GAUGE as TUI_USED

KV_BLOCKS = 256  # the burst needs about 3x this: CFS swaps


def test_the_kv_gauge_names_are_the_ones_the_console_draws() -> None:
    assert (KV_USED_GAUGE, KV_TOTAL_GAUGE) == (TUI_USED, TUI_TOTAL)


def test_the_daemon_shows_the_engines_kv_gauges_and_request_latencies(
    make_env, short_dir  # noqa: F811 (the fixtures imported above)
) -> None:
    port = free_port()
    env = make_env("--metrics-port", str(port))
    engine = subprocess.Popen(
        [sys.executable, "-m", "llmserve", "bench", "--executor", "model", "--preset", "tiny",
         "--device", "cpu", "--burst", "16", "--interval-s", "0.05", "--policy", "cfs",
         "--kv-blocks", str(KV_BLOCKS), "--cfs-slice-steps", "16", "--out",
         str(short_dir / "bench")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(XSCHED_SCHEDULER="GLB", XSCHED_SOCKET=str(env.daemon.socket),
                 OPENBLAS_NUM_THREADS="1"),
    )  # fmt: skip
    stub = env.daemon.stub()
    gauges: dict[str, float] = {}  # the largest value seen of each gauge
    tasks: dict[str, int] = {}  # the largest task-latency count seen per XQueue name
    metrics: list[str] = []

    def seen() -> bool:
        if engine.poll() is not None:
            return True  # it is over: assert on what was seen
        procs = stub.ListProcesses(cpb.ListProcessesRequest(), timeout=5).processes
        for proc in procs:
            if proc.pid == engine.pid:
                for name, value in proc.gauges.items():
                    gauges[name] = max(value, gauges.get(name, value))
        for view in env.daemon.xqueues():
            if view.info.pid != engine.pid:
                continue
            tasks[view.info.name] = max(view.task.count, tasks.get(view.info.name, 0))
        done = (
            gauges.get(KV_SWAPPED_GAUGE, 0) > 0
            and tasks.get("llmserve-ttft", 0) > 0
            and tasks.get("llmserve-tpot", 0) > 0
        )
        if done and not metrics:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                metrics.append(r.read().decode())
        return done and metrics

    wait_for(seen, timeout=90, interval=0.1)
    _, err = engine.communicate(timeout=90)
    assert engine.returncode == 0, err
    assert gauges.get(KV_TOTAL_GAUGE) == KV_BLOCKS
    assert 0 < gauges.get(KV_USED_GAUGE, 0) <= KV_BLOCKS
    assert gauges.get(KV_SWAPPED_GAUGE, 0) > 0, "CFS swapped KV to host"
    assert "llmserve-cfs" in tasks, "the engine's step XQueue is registered"
    assert 0 < tasks["llmserve-ttft"] <= 16 and 0 < tasks["llmserve-tpot"] <= 16
    text = metrics[0]
    assert f'xsched_workload_gauge{{gauge="{KV_SWAPPED_GAUGE}",pid="{engine.pid}"}}' in text
    assert 'kind="task",name="llmserve-ttft"' in text and 'name="llmserve-tpot"' in text
    # The engine's own record of the run agrees: every request finished.
    summary = json.loads((short_dir / "bench" / "bench.json").read_text())
    assert summary["policies"]["cfs"]["summary"]["finished"] == 16
