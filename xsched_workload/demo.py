"""`make demo`: XQueues under HPF on the simulated XPU, shown live in the terminal.

Two processes' worth of work in one: an interactive service (high priority, periodic)
and a batch job (low priority, flat out) share the simulated device. Watch the batch
job's SUSP% column: HPF suspends it whenever the service has work, and the service's
latency stays near what it would be alone (about 4 ms for its 8 x 500 us commands).
"""

from __future__ import annotations

import os
import sys

from xsched_workload import cli

QUEUES = [
    "name=interactive,priority=10,period_ms=25,commands=8,command_us=500,level=2",
    "name=batch,priority=0,commands=10,command_us=500,level=2",
    "name=training,priority=-5,commands=20,command_us=1000,level=2",
]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("XSCHED_POLICY", "HPF")
    print(__doc__)
    args = ["--device", "sim", "--duration-s", "60", "--live"]
    for spec in QUEUES:
        args += ["--queue", spec]
    return cli.main(args + argv)


if __name__ == "__main__":
    sys.exit(main())
