"""Helpers for the CUDA benchmarks that run each side as its own process: the
`xsched-workload` processes, xschedd, a private MPS server, the device's name.
(cuda_fixed_priority_2proc.py, cuda_bandwidth_2proc.py)"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from cuda_common import ROOT


def child_env() -> dict:
    """This process's environment for the children: no XSCHED_* setting, the repository
    on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XSCHED_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


def workload(queue: str, duration_s: float, env: dict, native: bool, cwd: Path = ROOT) -> subprocess.Popen:
    """One `xsched-workload --device cuda:0 --json` process running `queue` (from the
    checkout `cwd`)."""
    cmd = [sys.executable, "-m", "xsched_workload.cli", "--device", "cuda:0", "--json",
           "--duration-s", str(duration_s), "--queue", queue]  # fmt: skip
    if native:
        cmd.append("--native")
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def summary_of(out: str, name: str) -> dict | None:
    """Queue `name`'s summary line from a `workload` process's output, or None."""
    for line in out.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            if row.get("summary") and row.get("queue") == name:
                return row
    return None


MPS_CONTROL = "nvidia-cuda-mps-control"
MPS_DIRS = ("/usr/local/nvidia/bin", "/usr/bin")


@contextlib.contextmanager
def mps_server(tmp: Path):
    """A private MPS control daemon for the duration; yields the env its clients need."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *MPS_DIRS])
    control = shutil.which(MPS_CONTROL, path=path)
    if control is None:
        raise SystemExit(f"--mps: {MPS_CONTROL} not found on PATH or in {', '.join(MPS_DIRS)}")
    env = {"CUDA_MPS_PIPE_DIRECTORY": str(tmp / "mps-pipe"), "CUDA_MPS_LOG_DIRECTORY": str(tmp / "mps-log")}
    for d in env.values():
        Path(d).mkdir()
    subprocess.run([control, "-d"], env={**os.environ, **env}, check=True)
    try:
        yield env
    finally:
        subprocess.run([control], check=False, input="quit\n", text=True, env={**os.environ, **env}, timeout=30)
        log = Path(env["CUDA_MPS_LOG_DIRECTORY"]) / "control.log"
        clients = log.read_text().lower().count("new client") if log.exists() else 0
        print(f"MPS: {clients} client connections logged", flush=True)



@contextlib.contextmanager
def children_env(mps: bool, export: bool = False):
    """The children's environment (`child_env`) for the duration; with `mps`, that of the
    clients of a private MPS server started for it (`export`: this process's too)."""
    base = child_env()
    if not mps:
        yield base
        return
    with tempfile.TemporaryDirectory(prefix="xs-mps-") as tmp, mps_server(Path(tmp)) as mps_env:
        if export:
            os.environ.update(mps_env)
        yield {**base, **mps_env}


def start_daemon(tmp: Path, env: dict, policy: str = "HPF") -> subprocess.Popen:
    """xschedd on a socket in `tmp`, running `policy`; returns once it listens."""
    sock = tmp / "xschedd.sock"
    d = subprocess.Popen([sys.executable, "-m", "xschedd.cli", "--socket", str(sock), "--policy", policy,
                          "--state-dir", str(tmp / "state")], cwd=ROOT, env=env)  # fmt: skip
    deadline = time.monotonic() + 30
    while not sock.exists():
        if d.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("xschedd did not start")
        time.sleep(0.05)
    time.sleep(0.5)
    return d



def device_info() -> SimpleNamespace:
    """cuda:0's name and SM count, read in a child process: under MPS this process must not
    hold a CUDA context, or the MPS server would wait for it before quitting."""
    code = ("import json; from hal.cuda import CudaDevice; d = CudaDevice.open(0); "
            "print(json.dumps([d.name, d.info.name, d.info.sm_count]))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    name, model, sms = json.loads(out.stdout.strip().splitlines()[-1])
    return SimpleNamespace(name=name, info=SimpleNamespace(name=model, sm_count=sms))


NOISE_BURST_MS = (0.5, 3.0)  # each noise process: busy, then asleep, for a random time in this range


@contextlib.contextmanager
def host_noise(processes: int, seed: int = 1):
    """`processes` processes that burn the host's CPUs in bursts for the duration (busy,
    then asleep, each for 0.5-3 ms at random: about half a core each): a noisy host made
    on purpose, so that a run on a quiet machine can show what host threads that wake
    late cost. 0: none."""
    code = ("import random, sys, time\n"
            "r = random.Random(int(sys.argv[1])); lo, hi = float(sys.argv[2]) / 1e3, float(sys.argv[3]) / 1e3\n"
            "while True:\n"
            "    end = time.perf_counter() + r.uniform(lo, hi)\n"
            "    while time.perf_counter() < end: pass\n"
            "    time.sleep(r.uniform(lo, hi))\n")  # fmt: skip
    procs = [subprocess.Popen([sys.executable, "-c", code, str(seed + i), *map(str, NOISE_BURST_MS)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(processes)]  # fmt: skip
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
