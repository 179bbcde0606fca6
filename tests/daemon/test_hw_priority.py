"""An operator's priority hint reaches the XQueue's hardware queue in the live process
(a CUDA stream priority on a GPU: under MPS it orders blocks across processes), and a
daemon restart brings it back. Real daemon, real agent thread, real xschedctl."""

from __future__ import annotations

import signal

from hal.sim import SimDevice
from preempt.agent import Agent, agent_config
from preempt.xqueue import XQueue
from tests.daemon.conftest import Env, wait_for
from xschedd.policy import hints as H


def test_an_operator_priority_hint_reaches_the_hardware_queue_and_survives_a_restart(env: Env) -> None:
    seen: list[int] = []
    hwq = SimDevice.local().create_queue()
    hwq.set_priority = seen.append  # what CudaHwQueue turns into a stream priority
    xq = XQueue(hwq, name="q")
    agent = Agent(agent_config({"XSCHED_SOCKET": str(env.daemon.socket)}))
    try:
        agent.add(xq, [H.PriorityHint(xq.id, 1)])  # the runtime set 1 on the hardware itself
        wait_for(lambda: [v.priority for v in env.daemon.xqueues()] == [1], 10)
        assert seen == []  # nothing to change
        for bad in ("300", "x"):  # refused before anything reaches the process
            assert env.ctl("hint", hex(xq.id), "--priority", bad).returncode != 0
        r = env.ctl("hint", hex(xq.id), "--priority", "7")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: seen == [7], 5)
        assert env.ctl("hint", hex(xq.id), "--priority", "7").returncode == 0
        assert env.ctl("hint", hex(xq.id), "--utilization", "40").returncode == 0
        env.daemon.stop(signal.SIGKILL)
        env.daemon.start()  # the agent registers again with its own priority, 1
        wait_for(lambda: [v.priority for v in env.daemon.xqueues()] == [7], 10)
        wait_for(lambda: seen == [7, 7], 5)  # the kept hint is pushed again, once
    finally:
        agent.close()
