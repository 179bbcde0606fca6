"""Configuration by environment: XSched's names and defaults; every bad value named clearly."""

from __future__ import annotations

import pytest

from preempt import ConfigError
from preempt.config import SchedulerKind, load_config


def test_defaults_are_xscheds():
    config = load_config({})
    assert config.scheduler is SchedulerKind.APP
    assert config.policy is None
    assert config.auto_xqueue is False
    d = config.defaults
    assert (d.level, d.threshold, d.batch_size, d.priority) == (1, 16, 8, 0)
    assert (d.utilization, d.timeslice_us) == (100, 5000)
    assert (d.deadline_us, d.laxity_us) == (None, None)
    assert d.idle_delay_us == 1000  # ours


def test_the_idle_delay_reaches_the_xqueues_the_runtime_makes(device):
    from preempt.runtime import Runtime

    for raw, seconds in (("250", 250e-6), ("0", 0.0), (None, 1e-3)):
        env = {} if raw is None else {"XSCHED_IDLE_DELAY_US": raw}
        xq = Runtime(load_config(env)).create_xqueue(device.create_queue())
        assert xq.idle_news_delay_s == pytest.approx(seconds)


def test_a_policy_means_a_local_scheduler():
    config = load_config({"XSCHED_POLICY": "up", "XSCHED_SCHEDULER": "APP"})
    assert (config.scheduler, config.policy) == (SchedulerKind.LCL, "UP")


def test_lcl_without_a_policy_runs_hpf():
    assert load_config({"XSCHED_SCHEDULER": "lcl"}).policy == "HPF"


def test_auto_xqueue_values_are_read():
    config = load_config(
        {
            "XSCHED_AUTO_XQUEUE": "ON",
            "XSCHED_AUTO_XQUEUE_LEVEL": "3",
            "XSCHED_AUTO_XQUEUE_THRESHOLD": "4",
            "XSCHED_AUTO_XQUEUE_PRIORITY": "-256",
            "XSCHED_AUTO_XQUEUE_DEADLINE": "20000",
        }
    )
    d = config.defaults
    assert config.auto_xqueue
    assert (d.level, d.threshold, d.batch_size, d.priority, d.deadline_us) == (3, 4, 4, -256, 20000)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"XSCHED_SCHEDULER": "GLOBAL"}, r"XSCHED_SCHEDULER='GLOBAL': expected one of APP, LCL, GLB"),
        ({"XSCHED_POLICY": "FIFO"}, r"XSCHED_POLICY='FIFO': expected one of HPF"),
        ({"XSCHED_AUTO_XQUEUE": "maybe"}, r"XSCHED_AUTO_XQUEUE='maybe': expected ON or OFF"),
        ({"XSCHED_AUTO_XQUEUE_LEVEL": "4"}, r"XSCHED_AUTO_XQUEUE_LEVEL='4': level must be in \[1, 3\]"),
        ({"XSCHED_AUTO_XQUEUE_LEVEL": "one"}, r"XSCHED_AUTO_XQUEUE_LEVEL='one': expected an integer in \[1, 3\]"),
        ({"XSCHED_AUTO_XQUEUE_THRESHOLD": "0"}, r"XSCHED_AUTO_XQUEUE_THRESHOLD='0': .* \[1, 2\*\*63-1\]"),
        (
            {"XSCHED_AUTO_XQUEUE_THRESHOLD": "4", "XSCHED_AUTO_XQUEUE_BATCH_SIZE": "8"},
            r"XSCHED_AUTO_XQUEUE_BATCH_SIZE='8': batch size must be in \[1, threshold=4\]",
        ),
        ({"XSCHED_AUTO_XQUEUE_PRIORITY": "256"}, r"XSCHED_AUTO_XQUEUE_PRIORITY='256': .*\[-256, 255\]"),
        ({"XSCHED_AUTO_XQUEUE_UTILIZATION": "101"}, r"UTILIZATION='101': .*\[0, 100\]"),
        ({"XSCHED_AUTO_XQUEUE_TIMESLICE": "50"}, r"TIMESLICE='50': .*\[100, 100000\]"),
        ({"XSCHED_AUTO_XQUEUE_DEADLINE": "-1"}, r"DEADLINE='-1': .*\[1, 2\*\*63-1\]"),
        ({"XSCHED_AUTO_XQUEUE_LAXITY": "1.5"}, r"LAXITY='1.5': expected an integer"),
        ({"XSCHED_IDLE_DELAY_US": "-5"}, r"XSCHED_IDLE_DELAY_US='-5': idle delay must be in \[0, 1000000\]"),
        ({"XSCHED_IDLE_DELAY_US": "1ms"}, r"XSCHED_IDLE_DELAY_US='1ms': expected an integer in \[0, 1000000\]"),
    ],
)
def test_bad_values_name_the_variable_the_value_and_the_range(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env)


def test_empty_values_mean_unset():
    assert load_config({"XSCHED_POLICY": "", "XSCHED_AUTO_XQUEUE_THRESHOLD": " "}) == load_config({})
