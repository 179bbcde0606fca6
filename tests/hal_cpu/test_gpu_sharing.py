"""hal.sharing: when a suspended CUDA queue parks instead of napping (no GPU needed)."""

from __future__ import annotations

import pytest

from hal.errors import DeviceError
from hal.sharing import ALWAYS, AUTO, ENV, NEVER, SharingWatch, mode, time_sliced
from tests.daemon.conftest import wait_for


@pytest.mark.parametrize(
    "raw, expected",
    [(None, AUTO), ("", AUTO), ("auto", AUTO), (" AUTO ", AUTO), ("1", ALWAYS), ("on", ALWAYS), ("0", NEVER),
     ("off", NEVER), ("No", NEVER)],
)  # fmt: skip
def test_mode_from_the_environment(raw, expected):
    assert mode({} if raw is None else {ENV: raw}) == expected


def test_a_bad_mode_says_what_is_allowed():
    with pytest.raises(DeviceError, match="XSCHED_CUDA_PARK='sometimes': expected auto, 1 .* or 0"):
        mode({ENV: "sometimes"})


@pytest.mark.parametrize(
    "processes, mps_clients, sliced",
    [(0, 0, False), (1, 0, False), (2, 0, True), (5, 0, True), (3, 2, False), (1, 1, False)],
)
def test_time_sliced_means_another_context_and_no_mps(processes, mps_clients, sliced):
    assert time_sliced(processes, mps_clients) is sliced


class FakeProbe:
    """What NVML would say (compute processes, MPS clients), or None for a failed query."""

    def __init__(self, answer):
        self.answer, self.calls = answer, 0

    def __call__(self):
        self.calls += 1
        return self.answer


def test_auto_follows_the_probe_from_start_on():
    probe = FakeProbe((1, 0))
    watch = SharingWatch(AUTO, probe, poll_s=0.01)
    assert not watch.park and probe.calls == 0  # nothing asked before start()
    watch.start()
    try:
        assert probe.calls == 1 and not watch.park  # start() asks at once: alone on the GPU
        probe.answer = (2, 0)  # another process arrives
        wait_for(lambda: watch.park, 5)
        probe.answer, calls = None, probe.calls  # NVML fails: the last answer stands
        wait_for(lambda: probe.calls > calls + 2, 5)
        assert watch.park
        probe.answer = (2, 2)  # an MPS server joins the contexts
        wait_for(lambda: not watch.park, 5)
    finally:
        watch.stop()


def test_start_is_once():
    probe = FakeProbe((2, 0))
    watch = SharingWatch(AUTO, probe, poll_s=60)
    watch.start()
    watch.start()
    watch.stop()
    assert probe.calls == 1 and watch.park


@pytest.mark.parametrize("how, park", [(ALWAYS, True), (NEVER, False)])
def test_fixed_modes_never_ask(how, park):
    probe = FakeProbe((2, 0))
    watch = SharingWatch(how, probe, poll_s=0.01)
    watch.start()
    assert watch.park is park and probe.calls == 0


def test_auto_without_nvml_naps():
    watch = SharingWatch(AUTO, None)
    watch.start()
    assert not watch.park
