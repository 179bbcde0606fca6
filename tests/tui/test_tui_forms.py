"""Dialog validation and connection options: refused with a reason, never half-sent."""

from __future__ import annotations

import pytest

from xsched_tui.connection import Target, TargetError, resolve_target
from xsched_tui.forms import FormError, HintKind, build_config, build_hint, step_priority
from xsched_tui.records import Latency, QueueState, XQueueRow
from xschedd.policy import hints as H

ROW = XQueueRow(
    xqueue_id=(7 << 32) | 1, name="fg", pid=7, process="svc", device="sim", level=1,
    threshold=16, batch_size=8, state=QueueState.IDLE, pending=0, in_flight=0, submitted=0,
    completed=0, priority=5, hints=(), latency=Latency(), ready_for_s=0.0, share=0.0,
)


@pytest.mark.parametrize(("kind", "value", "expected"), [
    (HintKind.UTILIZATION, "40", H.UtilizationHint(ROW.xqueue_id, 40)),
    (HintKind.PROCESS_UTILIZATION, "60", H.ProcessUtilizationHint(7, 60)),
    (HintKind.TIMESLICE, "2000", H.TimesliceHint(2000)),
    (HintKind.DEADLINE, "15000", H.DeadlineHint(ROW.xqueue_id, 15000)),
    (HintKind.PRIORITY, "-3", H.PriorityHint(ROW.xqueue_id, -3)),
])
def test_valid_hints_are_built_for_the_selected_xqueue(kind, value, expected):
    assert build_hint(kind, ROW, value).hint == expected


def test_laxity_defaults_its_crit_priority_to_the_current_priority():
    hint = build_hint(HintKind.LAXITY, ROW, "500").hint
    assert hint == H.LaxityHint(ROW.xqueue_id, 500, 0, 5)


def test_window_active_needs_no_value():
    assert build_hint(HintKind.WINDOW_ACTIVE, ROW, active=False).hint == H.WindowActiveHint(7, False)


@pytest.mark.parametrize(("kind", "value", "reason"), [
    (HintKind.UTILIZATION, "500", "utilization 500 is out of range [0, 100]"),
    (HintKind.TIMESLICE, "10", "timeslice_us 10 is out of range [100, 100000]"),
    (HintKind.DEADLINE, "soon", "deadline_us: 'soon' is not an integer"),
    (HintKind.PRIORITY, "300", "priority 300 is out of range [-256, 255]"),
])
def test_out_of_range_hints_are_refused_with_the_range(kind, value, reason):
    with pytest.raises(FormError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        build_hint(kind, ROW, value)


def test_priority_steps_stop_at_the_range():
    assert step_priority(ROW, 1).priority == 6
    top = XQueueRow(**{**ROW.__dict__, "priority": 255})
    with pytest.raises(FormError, match="out of range"):
        step_priority(top, 1)


def test_config_sends_only_what_changed_and_refuses_bad_values():
    req = build_config(ROW, "2", "16", "8")
    assert (req.level, req.threshold, req.batch_size) == (2, None, None)
    with pytest.raises(FormError, match="level 4 is out of range"):
        build_config(ROW, "4", "", "")
    with pytest.raises(FormError, match="batch_size 9 is out of range"):
        build_config(ROW, "", "8", "9")
    with pytest.raises(FormError, match="nothing changed"):
        build_config(ROW, "1", "16", "8")


def test_targets_resolve_like_xschedctl(tmp_path):
    assert resolve_target(connect="localhost:50051", env={}) == Target("localhost:50051")
    assert resolve_target(socket=tmp_path / "x.sock", env={}).address == f"unix:{tmp_path}/x.sock"
    assert resolve_target(env={"XSCHED_SOCKET": "/s.sock"}).address == "unix:/s.sock"
    tok = resolve_target(connect="h:1", env={"XSCHED_TOKEN": "t"})
    assert tok.metadata == (("authorization", "Bearer t"),)
    with pytest.raises(TargetError, match="expected HOST:PORT"):
        resolve_target(connect="nohost", env={})
