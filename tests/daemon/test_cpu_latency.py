"""`xschedd --cpu-latency-us`: a PM QoS request held while the daemon serves."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon.conftest import ROOT, _env, wait_for
from xschedd.cpu_latency import (
    MAX_US,
    PM_QOS_PATH,
    CpuLatencyError,
    CpuLatencyRequest,
    bound_has_effect,
    cpuidle_driver,
    current_bound_us,
)


def test_a_request_writes_its_bound_as_a_native_int32_and_holds_the_file(tmp_path: Path) -> None:
    path = tmp_path / "qos"
    path.write_bytes(b"")
    request = CpuLatencyRequest(25, str(path))
    assert path.read_bytes() == struct.pack("=i", 25)
    fd = request._fd
    assert fd is not None and os.fstat(fd).st_ino == path.stat().st_ino  # held open: the request lives
    request.close()
    request.close()  # twice is fine
    with pytest.raises(OSError):
        os.fstat(fd)
    assert current_bound_us(str(path)) == 25


@pytest.mark.parametrize("us", [-1, MAX_US + 1])
def test_out_of_range_bounds_are_refused(tmp_path: Path, us: int) -> None:
    with pytest.raises(ValueError, match="0..2000000000"):
        CpuLatencyRequest(us, str(tmp_path / "qos"))


def test_a_missing_or_forbidden_file_says_which_and_why(tmp_path: Path) -> None:
    with pytest.raises(CpuLatencyError, match=r"qos-missing: No such file"):
        CpuLatencyRequest(0, str(tmp_path / "qos-missing"))
    assert current_bound_us(str(tmp_path / "qos-missing")) is None


def test_a_kernel_without_a_cpuidle_driver_is_told_apart(tmp_path: Path) -> None:
    driver = tmp_path / "current_driver"
    driver.write_text("none\n")
    assert cpuidle_driver(str(driver)) == "none"
    assert not bound_has_effect(str(driver))
    driver.write_text("haltpoll\n")
    assert bound_has_effect(str(driver))
    assert cpuidle_driver(str(tmp_path / "missing")) is None
    assert bound_has_effect(str(tmp_path / "missing"))  # unknown: the bound may matter


def _xschedd(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xschedd.cli", "--socket", str(tmp_path / "d.sock"), "--state-dir",
         str(tmp_path / "state"), *args],
        capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=20, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("value", ["-1", "2000000001", "soon"])
def test_the_flag_refuses_bad_values_with_a_usage_error(short_dir: Path, value: str) -> None:
    r = _xschedd(short_dir, "--cpu-latency-us", value)
    assert r.returncode == 2
    assert "--cpu-latency-us" in r.stderr


_WRITABLE = os.path.exists(PM_QOS_PATH) and os.access(PM_QOS_PATH, os.W_OK)


@pytest.mark.skipif(_WRITABLE, reason="this user may request a bound")
def test_without_the_right_to_request_it_the_daemon_says_so_and_does_not_start(short_dir: Path) -> None:
    r = _xschedd(short_dir, "--cpu-latency-us", "0")
    assert r.returncode == 1
    assert "cannot request a CPU wake-up latency bound" in r.stderr
    assert not (short_dir / "d.sock").exists()


@pytest.mark.skipif(not _WRITABLE, reason=f"needs write access to {PM_QOS_PATH} (root)")
def test_the_daemon_holds_the_bound_while_it_serves_and_drops_it_when_it_stops(make_env) -> None:
    before = current_bound_us()
    assert before is not None
    wanted = 3 if before > 3 else None
    if wanted is None:
        pytest.skip(f"something already holds the bound at {before} us")
    env = make_env("--cpu-latency-us", str(wanted))
    assert env.daemon.serving()
    assert current_bound_us() == wanted
    assert env.daemon.stop() == 0
    wait_for(lambda: current_bound_us() == before, 5)
