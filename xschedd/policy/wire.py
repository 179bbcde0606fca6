"""Conversions between the wire messages of xsched.v1 and the policy package's records.

Hints go through the constructors of xschedd.policy.hints, so a hint off the wire is
validated exactly like one from the environment or the CLI (HintError names the range).
"""

from __future__ import annotations

from protos.xsched.v1 import types_pb2 as pb
from xschedd.policy import hints as H
from xschedd.policy.errors import HintError


def hint_to_proto(hint: H.Hint) -> pb.Hint:
    if isinstance(hint, H.PriorityHint):
        return pb.Hint(priority=pb.PriorityHint(xqueue_id=hint.xqueue_id, priority=hint.priority))
    if isinstance(hint, H.UtilizationHint):
        return pb.Hint(
            utilization=pb.UtilizationHint(xqueue_id=hint.xqueue_id, utilization=hint.utilization)
        )
    if isinstance(hint, H.ProcessUtilizationHint):
        return pb.Hint(
            process_utilization=pb.ProcessUtilizationHint(pid=hint.pid, utilization=hint.utilization)
        )
    if isinstance(hint, H.TimesliceHint):
        return pb.Hint(timeslice=pb.TimesliceHint(timeslice_us=hint.timeslice_us))
    if isinstance(hint, H.DeadlineHint):
        return pb.Hint(deadline=pb.DeadlineHint(xqueue_id=hint.xqueue_id, deadline_us=hint.deadline_us))
    if isinstance(hint, H.KDeadlineHint):
        return pb.Hint(kdeadline=pb.KDeadlineHint(k=hint.k))
    if isinstance(hint, H.LaxityHint):
        return pb.Hint(
            laxity=pb.LaxityHint(
                xqueue_id=hint.xqueue_id,
                laxity_us=hint.laxity_us,
                lax_priority=hint.lax_priority,
                crit_priority=hint.crit_priority,
            )
        )
    if isinstance(hint, H.WindowActiveHint):
        return pb.Hint(window_active=pb.WindowActiveHint(pid=hint.pid, active=hint.active))
    raise TypeError(f"not a hint: {hint!r}")


def hint_from_proto(msg: pb.Hint) -> H.Hint:
    """The hint in `msg`, validated; HintError when it is empty or out of range."""
    kind = msg.WhichOneof("kind")
    if kind == "priority":
        return H.PriorityHint(msg.priority.xqueue_id, msg.priority.priority)
    if kind == "utilization":
        return H.UtilizationHint(msg.utilization.xqueue_id, msg.utilization.utilization)
    if kind == "process_utilization":
        m = msg.process_utilization
        return H.ProcessUtilizationHint(m.pid, m.utilization)
    if kind == "timeslice":
        return H.TimesliceHint(msg.timeslice.timeslice_us)
    if kind == "deadline":
        return H.DeadlineHint(msg.deadline.xqueue_id, msg.deadline.deadline_us)
    if kind == "kdeadline":
        return H.KDeadlineHint(msg.kdeadline.k)
    if kind == "laxity":
        m = msg.laxity
        return H.LaxityHint(m.xqueue_id, m.laxity_us, m.lax_priority, m.crit_priority)
    if kind == "window_active":
        return H.WindowActiveHint(msg.window_active.pid, msg.window_active.active)
    raise HintError("the hint is empty: set one of priority, utilization, process_utilization, "
                    "timeslice, deadline, kdeadline, laxity, window_active")
