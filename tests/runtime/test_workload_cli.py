"""xsched-workload as a user runs it: real processes sharing one simulated device."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hal.sim.client import stop_server

ROOT = Path(__file__).resolve().parents[2]
FG = "name=fg,priority=10,period_ms=10,commands=4,command_us=500"
BG = "name=bg,priority=0,commands=10,command_us=500"


@pytest.fixture
def sim_env(tmp_path):
    """An environment whose processes share a private simulated device (started on demand)."""
    sock = tmp_path / "sim.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XSCHED_")}
    env.update(XSCHED_SIM_SOCKET=str(sock), PYTHONPATH=str(ROOT))
    yield env
    stop_server(sock)


def workload(env, *args, extra_env=None, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "xsched_workload.cli", *args],
        env={**env, **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def parse(stdout: str) -> tuple[list[dict], dict[str, dict]]:
    lines = [json.loads(line) for line in stdout.splitlines()]
    tasks = [line for line in lines if not line.get("summary")]
    summaries = {line["queue"]: line for line in lines if line.get("summary")}
    return tasks, summaries


def test_json_output_has_a_line_per_task_then_a_summary_per_queue_with_the_process(sim_env):
    result = workload(
        sim_env, "--device", "sim", "--duration-s", "1.5", "--queue", FG, "--queue", BG, "--json",
        extra_env={"XSCHED_POLICY": "HPF"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    tasks, summaries = parse(result.stdout)
    assert set(summaries) == {"fg", "bg"}
    assert [s["queue"] for s in map(json.loads, result.stdout.splitlines()[-2:])] == ["fg", "bg"]
    process = summaries["fg"]["process"]  # the process's own CPU over the run, every thread's
    assert summaries["bg"]["process"] == process and process["pid"] > 0
    assert process["tasks"] == len(tasks) and 1.4 < process["wall_s"] < 3.0 and process["cpu_s"] > 0
    assert process["cpu_us_per_task"] == pytest.approx(process["cpu_s"] / len(tasks) * 1e6, abs=0.1)
    for name, summary in summaries.items():
        mine = [t for t in tasks if t["queue"] == name]
        assert summary["tasks"] == len(mine) > 0
        assert [t["task"] for t in mine] == list(range(len(mine)))
        assert all(t["latency_ms"] > 0 for t in mine)
        ends = [t["end_s"] for t in mine]  # time.monotonic(): another process can compare
        assert ends == sorted(ends) and 0 < ends[-1] - ends[0] < 1.5
        assert 0 < summary["p50_ms"] <= summary["p99_ms"]
        assert summary["throughput_tps"] > 0
        assert "anticipation" not in summary, "the simulated device holds no level ahead of a task"
    assert summaries["fg"]["tasks"] == pytest.approx(150, abs=15)  # periodic at 10 ms


def test_the_process_summary_gives_its_cpu_a_task_and_a_share_of_a_core():
    from xsched_workload.runner import ProcessSummary

    p = ProcessSummary(pid=7, cpu_s=0.5, wall_s=2.0, tasks=400)
    assert p.as_json() == {"pid": 7, "cpu_s": 0.5, "wall_s": 2.0, "tasks": 400, "cpu_us_per_task": 1250.0}
    assert p.text() == "process 7: 0.50 s of CPU in 2.00 s (25% of a core), 1250 us a task"
    none = ProcessSummary(pid=7, cpu_s=0.01, wall_s=0.0, tasks=0)  # stopped before any task
    assert none.as_json()["cpu_us_per_task"] is None
    assert none.text() == "process 7: 0.01 s of CPU in 0.00 s (0% of a core)"


def test_a_summary_says_how_many_tasks_came_into_a_window_held_for_them():
    from xsched_workload.runner import QueueSummary

    held = {"windows": 12, "held": 11, "arrivals": 14, "arrivals_in_held_window": 10}
    summary = QueueSummary("fg", 14, 1.2, 1.5, 1.25, 160.0, anticipation=held)
    assert summary.as_json()["anticipation"] == held
    assert summary.text().endswith("; 10 of 14 arrivals came into a window held ahead")
    plain = QueueSummary("fg", 14, 1.2, 1.5, 1.25, 160.0)
    assert "anticipation" not in plain.as_json()
    assert plain.text() == "fg: 14 tasks, p50 1.20 ms, p99 1.50 ms, 160.0 tasks/s"


def test_two_processes_really_contend_for_one_shared_device(sim_env):
    alone = workload(sim_env, "--native", "--duration-s", "1.5", "--queue", FG, "--json")
    assert alone.returncode == 0, alone.stderr
    background = subprocess.Popen(
        [sys.executable, "-m", "xsched_workload.cli", "--native", "--duration-s", "4", "--queue", BG],
        env=sim_env, cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        shared = workload(sim_env, "--native", "--duration-s", "1.5", "--queue", FG, "--json")
    finally:
        background.wait(timeout=30)
    assert shared.returncode == 0, shared.stderr
    p50_alone = parse(alone.stdout)[1]["fg"]["p50_ms"]
    p50_shared = parse(shared.stdout)[1]["fg"]["p50_ms"]
    # FCFS device: the foreground now waits behind the other process's commands
    assert p50_shared > 1.3 * p50_alone


def test_sigterm_stops_it_cleanly_with_its_summaries(sim_env):
    """SIGTERM as Ctrl-C: the running tasks finish, the queues close and the summaries
    print, exit status 0 (a bare kill leaves commands in flight to the device)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "xsched_workload.cli", "--device", "sim", "--duration-s", "60", "--queue", BG,
         "--json"],
        env=sim_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first = proc.stdout.readline()
        assert json.loads(first)["queue"] == "bg", proc.stderr.read() if not first else first
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    tasks, summaries = parse(first + out)
    assert summaries["bg"]["tasks"] == len(tasks) >= 1


@pytest.mark.parametrize(
    "args, extra_env, message",
    [
        (["--queue", "name=a,colour=red"], {}, "unknown key 'colour'; keys are name, commands"),
        (["--queue", "commands=ten"], {}, "commands='ten' is not an integer"),
        (["--queue", "commands=0"], {}, "commands=0 must be >= 1"),
        (["--queue", "period_ms=-5"], {}, "period_ms=-5.0 must be > 0"),
        (["--queue", "name=a", "--queue", "name=a"], {}, "queue names must be distinct"),
        ([], {}, "at least one --queue is needed"),
        (["--queue", "name=a", "--duration-s", "0"], {}, "--duration-s must be > 0"),
        (["--queue", "name=a", "--device", "tpu:0"], {}, "--device 'tpu:0': choose one of sim"),
        (["--queue", "name=a,threshold=2,batch_size=4"], {}, r"batch_size 4 is out of range \[1, threshold=2\]"),
        (["--queue", "name=a,priority=300"], {"XSCHED_POLICY": "HPF"}, r"priority 300 is out of range \[-256, 255\]"),
        (["--queue", "name=a"], {"XSCHED_AUTO_XQUEUE_LEVEL": "9"}, "XSCHED_AUTO_XQUEUE_LEVEL='9'"),
        (["--queue", "name=a"], {"XSCHED_CUDA_BOARD": "maybe"}, "XSCHED_CUDA_BOARD='maybe': expected 1"),
        (["--queue", "name=a"], {"XSCHED_CUDA_PARK": "sometimes"}, "XSCHED_CUDA_PARK='sometimes': expected auto"),
        (["--queue", "name=a", "--json", "--live"], {}, "not allowed with argument"),
        (["--queue", "name=a,kind=cnn"], {}, "kind='cnn' must be one of spin, dnn"),
        (["--queue", "name=a,kind=dnn,commands=3"], {}, "commands is for kind=spin"),
        (["--queue", "name=a,layers=3"], {}, "layers is for kind=dnn"),
        (["--queue", "name=a,kind=dnn,layers=0"], {}, r"layers=0 must be in \[1, 64\]"),
        (["--queue", "name=a,guard=maybe"], {}, "guard='maybe' must be one of auto, on"),
        (["--queue", "name=a,guard=on"], {}, "guard=on is for CUDA devices (--device cuda:N), not 'sim'"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(sim_env, args, extra_env, message):
    result = workload(sim_env, "--duration-s", "0.2", *args, extra_env=extra_env)
    assert result.returncode == 2
    assert message.replace("\\", "") in result.stderr or __import__("re").search(message, result.stderr)
    assert "Traceback" not in result.stderr


def test_hints_without_a_scheduler_say_they_have_no_effect(sim_env):
    result = workload(sim_env, "--duration-s", "0.3", "--queue", "name=a,priority=5,commands=1")
    assert result.returncode == 0
    assert "hints have no effect" in result.stderr


def test_a_dnn_task_is_its_layers_of_commands_on_the_simulated_device(sim_env):
    """kind=dnn: each layer is two GEMMs of command_us and three short commands, so a
    task of 3 layers of 400 us GEMMs takes at least 3 x 813 us."""
    result = workload(
        sim_env, "--device", "sim", "--duration-s", "1", "--json",
        "--queue", "name=net,kind=dnn,layers=3,command_us=400",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    tasks, summaries = parse(result.stdout)
    assert summaries["net"]["tasks"] == len(tasks) > 10
    assert 3 * 0.813 <= summaries["net"]["p50_ms"] < 3 * 0.813 * 3
