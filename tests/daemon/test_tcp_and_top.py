"""TCP when asked for (agents with XSCHED_SERVER, xschedctl --connect), remote peers with
--allow-remote and the token, and xschedctl top."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys

import psutil
import pytest

from tests.daemon.conftest import ROOT, _env, free_port, wait_for


def _ctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xschedd.ctl", *args],
        capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=30, check=False,
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


def _non_loopback_address() -> str | None:
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not ipaddress.ip_address(a.address).is_loopback:
                return a.address
    return None


def test_a_remote_peer_needs_allow_remote_and_the_token(make_env, short_dir) -> None:
    host = _non_loopback_address()
    if host is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    token = short_dir / "token"
    token.write_text("s3cret-token\n")
    port = free_port()
    env = make_env("--listen", f"{host}:{port}", "--allow-remote", "--token-file", str(token))
    w = env.workload(
        "name=remote,priority=3,commands=2,command_us=200", duration_s=4,
        XSCHED_SERVER=f"{host}:{port}", XSCHED_TOKEN="s3cret-token",
    )  # fmt: skip
    wait_for(lambda: env.daemon.xqueues(), 10)  # the agent came in over TCP with the token
    assert "refused" not in env.daemon.log_text()
    target = ("--connect", f"{host}:{port}")
    for given in (None, "wrong"):
        extra = {} if given is None else {"XSCHED_TOKEN": given}
        refused = subprocess.run(
            [sys.executable, "-m", "xschedd.ctl", *target, "list"],
            capture_output=True, text=True, cwd=ROOT, env=_env(**extra), timeout=30, check=False,
        )  # fmt: skip
        assert refused.returncode == 4 and "PERMISSION_DENIED" in refused.stderr, refused.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "xschedd.ctl", *target, "--json", "list"],
        capture_output=True, text=True, cwd=ROOT, env=_env(XSCHED_TOKEN="s3cret-token"), timeout=30, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert [q["info"]["name"] for q in json.loads(listed.stdout)["xqueues"]] == ["remote"]
    assert w.wait(20) == 0
