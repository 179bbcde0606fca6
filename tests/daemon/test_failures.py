"""Failures of real processes: kill -9 of an agent, kill -9 and restart of the daemon."""

from __future__ import annotations

import json
import os
import signal
import time

from protos.xsched.v1 import control_pb2 as cpb
from tests.daemon.conftest import Env, wait_for


def test_kill9_of_an_agent_drops_its_queues_within_1s_and_the_others_run_on(env: Env) -> None:
    victim = env.workload("name=victim,commands=4,command_us=500", duration_s=20)
    other = env.workload("name=other,commands=4,command_us=500", duration_s=4)
    wait_for(lambda: len(env.daemon.xqueues()) == 2, 10)
    os.kill(victim.pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: [q.info.pid for q in env.daemon.xqueues()] == [other.pid], 5, 0.01)
    assert time.monotonic() - killed < 1.0
    done_before = len(other.tasks)
    time.sleep(0.5)
    assert len(other.tasks) > done_before  # the survivor keeps running
    assert other.wait() == 0, other.stderr


def test_kill9_of_the_daemon_fails_open_and_a_restart_restores_policy_and_hints(env: Env) -> None:
    # bg outranks fg, so HPF keeps fg suspended while bg is busy.
    bg = env.workload("name=bg,priority=20,commands=10,command_us=1000", duration_s=6)
    fg = env.workload("name=fg,priority=0,commands=2,command_us=500,tasks=200", duration_s=20)
    wait_for(lambda: len(env.daemon.xqueues()) == 2, 10)
    assert env.ctl("policy", "--set", "HPF").returncode == 0
    fg_id = next(q.info.xqueue_id for q in env.daemon.xqueues() if q.info.name == "fg")
    assert env.ctl("hint", hex(fg_id), "--priority", "-5").returncode == 0
    time.sleep(0.5)
    before = len(fg.latencies("fg"))
    env.daemon.stop(signal.SIGKILL)
    killed = time.monotonic()
    # Within the lease (2 s) fg's agent resumes it: it then runs at full speed.
    wait_for(lambda: len(fg.latencies("fg", killed)) >= 20, 2.0 + 3.0)
    first = min(t for t, _, _ in fg.tasks if t >= killed) if fg.tasks else killed
    assert first - killed < 2.0 + 1.5
    assert len(fg.latencies("fg")) > before

    env.daemon.start()
    wait_for(lambda: {q.info.name for q in env.daemon.xqueues()} >= {"bg", "fg"}, 5)
    policy = env.daemon.stub().GetPolicy(cpb.GetPolicyRequest(), timeout=5)
    assert policy.name == "HPF"
    prio = {q.info.name: q.priority for q in env.daemon.xqueues()}
    assert prio == {"bg": 20, "fg": -5}  # the operator's hint survived, not the app's default
    assert fg.wait(30) == 0 and bg.wait(30) == 0, fg.stderr + bg.stderr
    assert fg.summaries["fg"]["tasks"] == 200


def test_sigterm_tells_agents_to_resume_and_exits_0(env: Env) -> None:
    bg = env.workload("name=bg,priority=20,commands=10,command_us=1000", duration_s=4)
    fg = env.workload("name=fg,priority=0,commands=2,command_us=500", duration_s=4)
    wait_for(lambda: len(env.daemon.xqueues()) == 2, 10)
    time.sleep(0.3)
    assert env.daemon.stop(signal.SIGTERM) == 0
    stopped = time.monotonic()
    wait_for(lambda: len(fg.latencies("fg", stopped)) >= 10, 1.5)  # well within the lease
    assert fg.wait() == 0 and bg.wait() == 0
    assert not env.daemon.socket.exists()


def test_restart_restores_the_policy_set_online(make_env) -> None:
    env = make_env()
    assert env.ctl("policy", "--set", "CFS").returncode == 0
    assert env.daemon.stop() == 0
    env.daemon.start()
    out = json.loads(env.ctl("--json", "policy", "--query").stdout)
    assert out["name"] == "CFS"
