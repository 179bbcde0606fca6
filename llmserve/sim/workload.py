"""Request workloads: read and check requests.jsonl (every bad line reported with its line
number), write it back, and generate burst workloads of mixed prompt and output lengths."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from llmserve.errors import RequestFileError
from llmserve.sched.request import Request

REQUIRED_FIELDS: tuple[str, ...] = ("id", "arrival_s", "prompt_tokens", "max_tokens")
OPTIONAL_FIELDS: tuple[str, ...] = ("priority", "ttft_slo_ms")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_line(obj: Any) -> tuple[Request | None, list[str]]:
    """The request a parsed line holds, or the list of what is wrong with it."""
    if not isinstance(obj, dict):
        return None, [f"expected a JSON object, got {type(obj).__name__}"]
    problems: list[str] = []
    for name in REQUIRED_FIELDS:
        if name not in obj:
            problems.append(f"missing field {name!r}")
    unknown = sorted(set(obj) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        allowed = ", ".join(REQUIRED_FIELDS + OPTIONAL_FIELDS)
        problems.append(f"unknown field(s) {', '.join(map(repr, unknown))}; allowed: {allowed}")
    rid = obj.get("id")
    if "id" in obj and (not isinstance(rid, str) or not rid):
        problems.append(f"'id' must be a non-empty string, got {rid!r}")
    arrival = obj.get("arrival_s")
    if "arrival_s" in obj and (not _is_number(arrival) or arrival < 0):
        problems.append(f"'arrival_s' must be a number >= 0, got {arrival!r}")
    for name in ("prompt_tokens", "max_tokens"):
        value = obj.get(name)
        if name in obj and (not _is_int(value) or value < 1):
            problems.append(f"{name!r} must be an integer >= 1, got {value!r}")
    priority = obj.get("priority", 0)
    if not _is_int(priority):
        problems.append(f"'priority' must be an integer, got {priority!r}")
    slo = obj.get("ttft_slo_ms")
    if slo is not None and (not _is_number(slo) or slo <= 0):
        problems.append(f"'ttft_slo_ms' must be a number > 0 (or null), got {slo!r}")
    if problems:
        return None, problems
    return (
        Request(
            id=rid,
            arrival_s=float(arrival),
            prompt_tokens=obj["prompt_tokens"],
            max_tokens=obj["max_tokens"],
            priority=priority,
            ttft_slo_ms=None if slo is None else float(slo),
        ),
        [],
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_requests(lines: Iterable[str], source: str = "<requests>") -> list[Request]:
    """Requests from JSON lines, in file order. Blank lines are allowed; anything else that
    is not a valid request makes the whole read fail with RequestFileError, which lists
    every bad line as (line number, what is wrong)."""
    requests: list[Request] = []
    problems: list[tuple[int, str]] = []
    first_line_of: dict[str, int] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_constant=_reject_constant)
        except ValueError as exc:
            problems.append((lineno, f"not valid JSON ({exc})"))
            continue
        request, bad = _check_line(obj)
        if request is None:
            problems.extend((lineno, msg) for msg in bad)
            continue
        if request.id in first_line_of:
            problems.append(
                (lineno, f"duplicate id {request.id!r} (first on line {first_line_of[request.id]})")
            )
            continue
        first_line_of[request.id] = lineno
        requests.append(request)
    if not problems and not requests:
        problems.append((0, "the file holds no requests"))
    if problems:
        raise RequestFileError(source, problems)
    return requests


def load_requests(path: str | Path) -> list[Request]:
    """Read a requests.jsonl file; see `parse_requests`."""
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        return parse_requests(f, source=str(path))


def request_to_dict(request: Request) -> dict[str, Any]:
    """The JSON-lines form of a request (optional fields only when set)."""
    out: dict[str, Any] = {
        "id": request.id,
        "arrival_s": request.arrival_s,
        "prompt_tokens": request.prompt_tokens,
        "max_tokens": request.max_tokens,
        "priority": request.priority,
    }
    if request.ttft_slo_ms is not None:
        out["ttft_slo_ms"] = request.ttft_slo_ms
    return out


def gen_burst(
    n: int = 50,
    seed: int = 0,
    interval_s: float = 0.01,
    ttft_slo_ms: float | None = None,
    high_priority_fraction: float = 0.2,
) -> list[Request]:
    """A burst of `n` requests `interval_s` apart, of mixed lengths: prompts are 40% short
    (64-256 tokens), 40% medium (256-1024), 20% long (1024-2048); outputs are log-uniform
    in 32-512 tokens. About `high_priority_fraction` of them get priority 1, the rest 0.
    Deterministic for a given seed (Python's `random`, stable across versions)."""
    rng = random.Random(seed)
    out: list[Request] = []
    width = len(str(max(n, 1)))
    for i in range(n):
        pick = rng.random()
        if pick < 0.4:
            prompt = rng.randint(64, 256)
        elif pick < 0.8:
            prompt = rng.randint(257, 1024)
        else:
            prompt = rng.randint(1025, 2048)
        max_tokens = round(math.exp(rng.uniform(math.log(32), math.log(512))))
        priority = 1 if rng.random() < high_priority_fraction else 0
        out.append(
            Request(
                id=f"r{i + 1:0{width}d}",
                arrival_s=round(i * interval_s, 6),
                prompt_tokens=prompt,
                max_tokens=max_tokens,
                priority=priority,
                ttft_slo_ms=ttft_slo_ms,
            )
        )
    return out
