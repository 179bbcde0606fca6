"""Per-process gang scheduling: all XQueues of a process are suspended or resumed together.

A per-queue policy can suspend one stream of a multi-stream server while another stream
of the same process waits on it (a cross-stream deadlock); gang mode avoids that by
deciding per process. Pure: operations in, operations out.
"""

from __future__ import annotations

from collections import defaultdict

from xschedd.policy.base import Operation, Resume, SetTimer, Status, Suspend


def gang(status: Status, ops: list[Operation]) -> list[Operation]:
    """Rewrite per-queue decisions so each process runs all or none of its XQueues.

    A process runs if the policy resumes one of its ready XQueues, or, when none of its
    XQueues is ready, if the policy resumes any of them (so its next submission starts at
    once). Timers pass through unchanged.
    """
    resumed = {op.xqueue_id for op in ops if isinstance(op, Resume)}
    by_pid: dict[int, list[int]] = defaultdict(list)
    for q in status.xqueues.values():
        by_pid[q.pid].append(q.xqueue_id)
    runs: dict[int, bool] = {}
    for pid, ids in by_pid.items():
        ready = [i for i in ids if status.xqueues[i].ready]
        candidates = ready if ready else ids
        runs[pid] = any(i in resumed for i in candidates)
    out: list[Operation] = [op for op in ops if isinstance(op, SetTimer)]
    for xq_id in sorted(status.xqueues):
        pid = status.xqueues[xq_id].pid
        out.append(Resume(xq_id) if runs[pid] else Suspend(xq_id))
    return out
