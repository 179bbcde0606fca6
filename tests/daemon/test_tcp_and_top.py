"""TCP when asked for (agents with XSCHED_SERVER, xschedctl --connect), and xschedctl top."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.daemon.conftest import ROOT, _env, free_port, wait_for


def _ctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xschedd.ctl", *args],
        capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=30,
    )  # fmt: skip


def test_agents_and_xschedctl_work_over_loopback_tcp(make_env) -> None:
    port = free_port()
    env = make_env("--listen", f"127.0.0.1:{port}")
    w = env.workload(
        "name=tcp,priority=4,commands=2,command_us=200", duration_s=4,
        XSCHED_SERVER=f"127.0.0.1:{port}",  # wins over XSCHED_SOCKET
    )  # fmt: skip
    wait_for(lambda: env.daemon.xqueues(), 10)  # registered through TCP, seen on the socket
    listed = _ctl("--connect", f"127.0.0.1:{port}", "--json", "list")
    assert listed.returncode == 0, listed.stderr
    names = [q["info"]["name"] for q in json.loads(listed.stdout)["xqueues"]]
    assert names == ["tcp"]
    # a loopback peer is identified by the kernel (its uid): the owner may steer its queue
    hint = _ctl("--connect", f"127.0.0.1:{port}", "hint", "--pid", str(w.pid), "--priority", "7")
    assert hint.returncode == 0, hint.stderr
    assert w.wait(20) == 0


def test_tcp_is_off_unless_asked_for(env) -> None:
    refused = _ctl("--connect", f"127.0.0.1:{free_port()}", "list")
    assert refused.returncode == 3  # no daemon there
    assert "Traceback" not in refused.stderr


def test_top_prints_live_updates_and_stops_after_count(env) -> None:
    env.workload("name=topq,commands=2,command_us=200", duration_s=4)
    wait_for(lambda: env.daemon.xqueues(), 10)
    top = _ctl("--socket", str(env.daemon.socket), "top", "--interval", "0.2", "--count", "3")
    assert top.returncode == 0, top.stderr
    assert top.stdout.count("topq") >= 3
