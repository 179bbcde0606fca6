"""Dialog input -> validated requests, so a bad value is refused in the dialog with the reason.

Hints are validated by the constructors of xschedd.policy.hints (the one home of hint
ranges), XQueue parameters by preempt.xqueue.check_params (the one home of those).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hal import Level
from preempt.errors import PreemptError
from preempt.xqueue import check_params
from xsched_tui.records import XQueueRow
from xschedd.policy import hints as H
from xschedd.policy.errors import HintError


class FormError(ValueError):
    """Input a dialog refuses; the message says which field and why."""


class HintKind(enum.Enum):
    PRIORITY = "priority"
    UTILIZATION = "utilization"
    PROCESS_UTILIZATION = "process utilization"
    TIMESLICE = "timeslice"
    DEADLINE = "deadline"
    LAXITY = "laxity"
    WINDOW_ACTIVE = "window active"

    @property
    def unit(self) -> str:
        return {
            HintKind.PRIORITY: f"[{H.PRIORITY_NEVER}, {H.PRIORITY_MAX}]",
            HintKind.UTILIZATION: "% [0, 100]",
            HintKind.PROCESS_UTILIZATION: "% [0, 100] (whole process)",
            HintKind.TIMESLICE: f"us [{H.TIMESLICE_MIN_US}, {H.TIMESLICE_MAX_US}] (global)",
            HintKind.DEADLINE: "us >= 1",
            HintKind.LAXITY: "us >= 1",
            HintKind.WINDOW_ACTIVE: "",
        }[self]


@dataclass(frozen=True)
class HintRequest:
    """A validated hint and the `pid` field of SendHintRequest (0: as addressed)."""

    hint: H.Hint
    pid: int = 0


@dataclass(frozen=True)
class ConfigRequest:
    """Only the fields that change (None: leave as it is)."""

    xqueue_id: int
    level: int | None = None
    threshold: int | None = None
    batch_size: int | None = None


def parse_int(what: str, text: str, default: int | None = None) -> int:
    text = text.strip()
    if not text and default is not None:
        return default
    try:
        return int(text, 0)
    except ValueError:
        raise FormError(f"{what}: {text!r} is not an integer") from None


def build_hint(
    kind: HintKind,
    row: XQueueRow,
    value: str = "",
    lax_priority: str = "",
    crit_priority: str = "",
    active: bool = True,
) -> HintRequest:
    """The hint the dialog describes for the XQueue `row`; FormError names the bad field."""
    try:
        if kind is HintKind.PRIORITY:
            return HintRequest(H.PriorityHint(row.xqueue_id, parse_int("priority", value)))
        if kind is HintKind.UTILIZATION:
            return HintRequest(H.UtilizationHint(row.xqueue_id, parse_int("utilization", value)))
        if kind is HintKind.PROCESS_UTILIZATION:
            return HintRequest(H.ProcessUtilizationHint(row.pid, parse_int("utilization", value)))
        if kind is HintKind.TIMESLICE:
            return HintRequest(H.TimesliceHint(parse_int("timeslice_us", value)))
        if kind is HintKind.DEADLINE:
            return HintRequest(H.DeadlineHint(row.xqueue_id, parse_int("deadline_us", value)))
        if kind is HintKind.LAXITY:
            return HintRequest(H.LaxityHint(
                row.xqueue_id,
                parse_int("laxity_us", value),
                parse_int("lax_priority", lax_priority, H.PRIORITY_DEFAULT),
                parse_int("crit_priority", crit_priority, row.priority),
            ))
        if kind is HintKind.WINDOW_ACTIVE:
            return HintRequest(H.WindowActiveHint(row.pid, active))
    except HintError as exc:
        raise FormError(str(exc)) from None
    raise FormError(f"unknown hint kind {kind!r}")


def step_priority(row: XQueueRow, step: int) -> H.PriorityHint:
    """The priority hint that moves `row` by `step`; FormError at the ends of the range."""
    try:
        return H.PriorityHint(row.xqueue_id, row.priority + step)
    except HintError as exc:
        raise FormError(str(exc)) from None


def build_config(row: XQueueRow, level: str, threshold: str, batch_size: str) -> ConfigRequest:
    """Level, threshold and batch size from the dialog; empty fields keep the current value."""
    new_level = parse_int("level", level, row.level)
    new_threshold = parse_int("threshold", threshold, row.threshold)
    new_batch = parse_int("batch_size", batch_size, min(row.batch_size, new_threshold))
    try:
        check_params(new_level, new_threshold, new_batch, Level.INTERRUPT)
    except PreemptError as exc:
        raise FormError(str(exc)) from None
    req = ConfigRequest(
        row.xqueue_id,
        level=None if new_level == row.level else new_level,
        threshold=None if new_threshold == row.threshold else new_threshold,
        batch_size=None if new_batch == row.batch_size else new_batch,
    )
    if req.level is None and req.threshold is None and req.batch_size is None:
        raise FormError("nothing changed: edit level, threshold or batch size")
    return req
