"""What the benchmark scripts share: running xsched-workload, and writing results files."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))


def git_commit() -> str:
    """The commit measured: $XSCHED_COMMIT (a copy of the tree without .git, e.g. on the
    GPU machine), else git's HEAD, marked "-dirty" where tracked files differ from it (a
    copied tree beside an older .git, as on the GPU machine, named a commit it was not)."""
    if os.environ.get("XSCHED_COMMIT"):
        return os.environ["XSCHED_COMMIT"]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    if not head:
        return "unknown"
    return f"{head}-dirty" if changed else head


def machine() -> str:
    return f"{platform.node()} {platform.machine()} {psutil.cpu_count()} cpus"


def private_sim_env(speed: float = 1.0) -> tuple[dict[str, str], Path]:
    """An environment whose workloads share a fresh simulated device (on demand)."""
    sock = Path(tempfile.mkdtemp(prefix="xsched-bench-")) / "sim.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XSCHED_")}
    env.update(
        XSCHED_SIM_SOCKET=str(sock),
        XSCHED_SIM_SPEED=str(speed),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    return env, sock


def stop_sim(sock: Path) -> None:
    from hal.sim.client import stop_server

    stop_server(sock)


def run_workload(env: dict[str, str], args: list[str], extra_env: dict[str, str] | None = None):
    """Run xsched-workload --json; return {queue: summary dict}."""
    result = subprocess.run(
        [sys.executable, "-m", "xsched_workload.cli", "--json", *args],
        env={**env, **(extra_env or {})},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"xsched-workload {' '.join(args)} failed:\n{result.stderr}")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return {line["queue"]: line for line in lines if line.get("summary")}


def write_results(name: str, device: str, parameters: dict, results: dict) -> Path:
    path = ROOT / "bench" / "results" / f"{name}.json"
    payload = {
        "benchmark": name,
        "device": device,
        "machine": machine(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "parameters": parameters,
        "results": results,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
