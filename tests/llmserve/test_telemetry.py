"""EngineTelemetry turns the engine's events into what xschedd shows: KV gauges when they
change, one TTFT and one TPOT task span per request (as the benchmark's records define
them), nothing for rejected requests, and nothing at all without an agent."""

from __future__ import annotations

import pytest

from hal.sim import SimDevice
from llmserve.kv.block_manager import KVUsage
from llmserve.sim.trace import TraceEvent
from llmserve.telemetry import (
    KV_SWAPPED_GAUGE,
    KV_TOTAL_GAUGE,
    KV_USED_GAUGE,
    EngineTelemetry,
)
from preempt import XQueue
from preempt.config import Config
from preempt.errors import XQueueConfigError
from preempt.runtime import Runtime


def kv(used: int, swapped: int = 0) -> KVUsage:
    return KVUsage(16, 64, used, 256, swapped, 1, 0)


@pytest.fixture
def telemetry():
    device = SimDevice.local()
    gauges: list[tuple[str, float]] = []
    tel = EngineTelemetry(lambda name, value: gauges.append((name, value)),
                          XQueue(device.create_queue()), XQueue(device.create_queue()))  # fmt: skip
    yield tel, gauges
    tel.close()


def test_each_request_gives_one_ttft_and_one_tpot_span(telemetry) -> None:
    tel, _ = telemetry
    tel.emit(1.0, TraceEvent.ARRIVE, "a", kv(0))
    tel.emit(1.2, TraceEvent.SCHEDULE, "a", kv(4), kind="prefill", tokens=50, step=0)
    for n, t in enumerate((1.5, 1.6, 1.7, 1.9), start=1):
        tel.emit(t, TraceEvent.TOKEN, "a", kv(4), n=n)
    tel.emit(1.9, TraceEvent.FINISH, "a", kv(0))
    assert tel.ttft.task_latency.samples() == [pytest.approx(0.5)]
    assert tel.tpot.task_latency.samples() == [pytest.approx((1.9 - 1.5) / 3)]


def test_kv_gauges_are_published_only_when_they_change(telemetry) -> None:
    tel, gauges = telemetry
    tel.emit(0.0, TraceEvent.ARRIVE, "a", kv(0))
    tel.emit(0.1, TraceEvent.ADMIT, "a", kv(0))
    tel.emit(0.2, TraceEvent.SWAP_OUT, "a", kv(3, swapped=5))
    assert gauges == [(KV_USED_GAUGE, 0.0), (KV_TOTAL_GAUGE, 64.0), (KV_SWAPPED_GAUGE, 0.0),
                      (KV_USED_GAUGE, 3.0), (KV_TOTAL_GAUGE, 64.0), (KV_SWAPPED_GAUGE, 5.0)]  # fmt: skip


def test_rejected_and_one_token_requests_have_no_tpot(telemetry) -> None:
    tel, _ = telemetry
    tel.emit(0.0, TraceEvent.ARRIVE, "r", kv(0))
    tel.emit(0.0, TraceEvent.REJECT, "r", kv(0), reason="ttft_slo", detail="")
    tel.emit(0.0, TraceEvent.ARRIVE, "one", kv(0))
    tel.emit(0.3, TraceEvent.TOKEN, "one", kv(1), n=1)
    tel.emit(0.3, TraceEvent.FINISH, "one", kv(0))
    assert tel.ttft.task_latency.samples() == [pytest.approx(0.3)]
    assert tel.tpot.task_latency.samples() == []


def test_without_an_agent_there_is_nothing_to_attach() -> None:
    assert EngineTelemetry.attach(Runtime(Config()), SimDevice.local()) is None


def test_record_task_refuses_a_latency_that_is_not_finite_seconds() -> None:
    xq = XQueue(SimDevice.local().create_queue())
    with pytest.raises(XQueueConfigError, match="task latency must be seconds"):
        xq.record_task(float("nan"))
    with pytest.raises(XQueueConfigError, match="got -1"):
        xq.record_task(-1)
    xq.close()
