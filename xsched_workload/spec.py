"""The `--queue` option: comma-separated key=value pairs describing one XQueue's load."""

from __future__ import annotations

from dataclasses import dataclass, fields

from xsched_workload.tasks import KINDS, MAX_LAYERS


class SpecError(ValueError):
    """A bad --queue value; the message names the key, the value and what is allowed."""


@dataclass(frozen=True)
class QueueSpec:
    name: str
    commands: int = 10  # per task
    command_us: float = 500.0
    period_ms: float | None = None  # None: tasks back to back
    tasks: int | None = None  # stop after this many tasks (None: run for the duration)
    level: int | None = None
    threshold: int | None = None
    batch_size: int | None = None
    priority: int | None = None
    utilization: int | None = None
    timeslice: int | None = None  # us
    deadline: int | None = None  # us
    laxity: int | None = None  # us
    kind: str = "spin"  # what a task is (xsched_workload.tasks): spin commands or a dnn stack
    layers: int | None = None  # kind=dnn: layers per task (default 4)
    # CUDA: `auto` launches guarded kernels plain until the queue's first level-2 suspend
    # (hal.cuda.hwqueue, guard=None), `on` guarded from the start, as a queue is once
    # suspended (what a level-2 queue alone pays for being preemptible)
    guard: str = "auto"


_INT_KEYS = {"commands", "tasks", "level", "threshold", "batch_size", "priority", "utilization",
             "timeslice", "deadline", "laxity", "layers"}  # fmt: skip
_FLOAT_KEYS = {"command_us", "period_ms"}
KEYS = [f.name for f in fields(QueueSpec)]
GUARDS = ("auto", "on")


def parse_queue_spec(text: str, index: int = 0) -> QueueSpec:
    """Parse `name=fg,priority=10,period_ms=20,...`; the name defaults to q<index>."""
    values: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = part.partition("=")
        key = key.strip()
        raw = raw.strip()
        if not sep or not raw:
            raise SpecError(f"--queue {text!r}: {part!r} is not key=value")
        if key not in KEYS:
            raise SpecError(f"--queue {text!r}: unknown key {key!r}; keys are {', '.join(KEYS)}")
        if key in values:
            raise SpecError(f"--queue {text!r}: key {key!r} given twice")
        values[key] = _convert(text, key, raw)
    values.setdefault("name", f"q{index}")
    spec = QueueSpec(**values)  # type: ignore[arg-type]
    _check(text, spec, set(values))
    return spec


def _convert(text: str, key: str, raw: str) -> object:
    try:
        if key in _INT_KEYS:
            return int(raw)
        if key in _FLOAT_KEYS:
            return float(raw)
    except ValueError:
        kind = "an integer" if key in _INT_KEYS else "a number"
        raise SpecError(f"--queue {text!r}: {key}={raw!r} is not {kind}") from None
    return raw


def _check(text: str, spec: QueueSpec, given: set[str]) -> None:
    def bad(key: str, allowed: str) -> SpecError:
        return SpecError(f"--queue {text!r}: {key}={getattr(spec, key)!r} must be {allowed}")

    if spec.commands < 1:
        raise bad("commands", ">= 1")
    if not spec.command_us >= 0:
        raise bad("command_us", ">= 0")
    if spec.period_ms is not None and not spec.period_ms > 0:
        raise bad("period_ms", "> 0")
    if spec.tasks is not None and spec.tasks < 1:
        raise bad("tasks", ">= 1")
    if spec.kind not in KINDS:
        raise bad("kind", f"one of {', '.join(KINDS)}")
    if spec.kind == "dnn" and "commands" in given:
        raise SpecError(f"--queue {text!r}: commands is for kind=spin; a kind=dnn task has `layers` layers")
    if spec.layers is not None and spec.kind != "dnn":
        raise SpecError(f"--queue {text!r}: layers is for kind=dnn")
    if spec.layers is not None and not 1 <= spec.layers <= MAX_LAYERS:
        raise bad("layers", f"in [1, {MAX_LAYERS}]")
    if spec.guard not in GUARDS:
        raise bad("guard", f"one of {', '.join(GUARDS)}")
