"""xsched_workload.tasks: what one task of each kind submits (no device needed)."""

from __future__ import annotations

import pytest

from xsched_workload.tasks import DNN_LAYERS, task_of


class _Device:
    name = "sim"


def test_a_spin_task_is_its_commands_of_command_us():
    cmds = task_of("spin", _Device(), commands=3, command_us=250.0, layers=None)()
    assert [c.duration_us for c in cmds] == [250.0] * 3


def test_a_dnn_task_on_a_simulated_device_is_five_commands_a_layer_behind_a_load():
    cmds = task_of("dnn", _Device(), commands=10, command_us=300.0, layers=2)()
    assert [c.name for c in cmds] == ["load"] + ["layernorm", "gemm_up", "bias_gelu", "gemm_down", "residual"] * 2
    assert [c.duration_us for c in cmds[1:6]] == [5.0, 300.0, 5.0, 300.0, 3.0]
    assert len(task_of("dnn", _Device(), commands=10, command_us=1.0, layers=None)()) == 1 + 5 * DNN_LAYERS


def test_each_call_gives_fresh_commands():
    task = task_of("dnn", _Device(), commands=1, command_us=1.0, layers=1)
    first, second = task(), task()
    assert all(a is not b for a, b in zip(first, second, strict=True))


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="task kind 'cnn'"):
        task_of("cnn", _Device(), commands=1, command_us=1.0, layers=None)
