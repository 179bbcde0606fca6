"""Bad input on every RPC gets the right status, and the daemon keeps serving."""

from __future__ import annotations

import os
import socket

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from protos.xsched.v1 import agent_pb2 as apb
from protos.xsched.v1 import agent_pb2_grpc
from protos.xsched.v1 import control_pb2 as cpb
from protos.xsched.v1 import types_pb2 as pb
from tests.daemon.conftest import Env, wait_for


def _code(fn) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value.code()


def test_control_rpcs_answer_bad_input_with_the_right_status(env: Env) -> None:
    w = env.workload("name=q,commands=2,command_us=200", duration_s=6)
    q = wait_for(lambda: env.daemon.xqueues(), 10)[0].info.xqueue_id
    stub = env.daemon.stub()
    hint = lambda h, pid=0: stub.SendHint(cpb.SendHintRequest(hint=h, pid=pid), timeout=5)
    bad = pb.Hint(priority=pb.PriorityHint(xqueue_id=q, priority=900))
    assert _code(lambda: hint(bad)) is grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: hint(pb.Hint())) is grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: hint(pb.Hint(timeslice=pb.TimesliceHint(timeslice_us=5)))) is grpc.StatusCode.INVALID_ARGUMENT
    unknown = pb.Hint(priority=pb.PriorityHint(xqueue_id=q + 1000, priority=1))
    assert _code(lambda: hint(unknown)) is grpc.StatusCode.NOT_FOUND
    assert _code(lambda: hint(pb.Hint(priority=pb.PriorityHint(priority=1)), pid=1)) is grpc.StatusCode.NOT_FOUND
    assert _code(lambda: stub.SetPolicy(cpb.SetPolicyRequest(name="FIFO"), timeout=5)) is grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: stub.SetPolicy(cpb.SetPolicyRequest(), timeout=5)) is grpc.StatusCode.INVALID_ARGUMENT
    cfg = lambda **kw: stub.ConfigXQueue(cpb.ConfigXQueueRequest(xqueue_id=q, config=pb.XQueueConfig(**kw)), timeout=5)
    assert _code(lambda: cfg(level=7)) is grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: cfg()) is grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: cfg(threshold=4, batch_size=8)) is grpc.StatusCode.INVALID_ARGUMENT  # the XQueue refuses
    assert cfg(level=2, threshold=8).info.level == 2
    assert _code(lambda: stub.SuspendXQueue(cpb.XQueueRequest(xqueue_id=12345), timeout=5)) is grpc.StatusCode.NOT_FOUND
    assert _code(lambda: stub.ListXQueues(cpb.ListXQueuesRequest(pid=1), timeout=5)) is grpc.StatusCode.NOT_FOUND
    huge = cpb.SetPolicyRequest(name="x" * (5 * 1024 * 1024))
    assert _code(lambda: stub.SetPolicy(huge, timeout=5)) is grpc.StatusCode.RESOURCE_EXHAUSTED
    raw = grpc.insecure_channel(f"unix:{env.daemon.socket}").unary_unary("/xsched.v1.ControlService/SendHint")
    assert _code(lambda: raw(b"\xff\xff\xff\x0f garbage", timeout=5)) is grpc.StatusCode.INVALID_ARGUMENT
    assert env.daemon.serving()
    w.proc.kill()


def _agent_call(env: Env, *messages: apb.AgentMessage) -> grpc.StatusCode:
    stub = agent_pb2_grpc.AgentServiceStub(grpc.insecure_channel(f"unix:{env.daemon.socket}"))
    with pytest.raises(grpc.RpcError) as info:
        for _ in stub.Connect(iter(messages), timeout=5):
            pass
    return info.value.code()


def test_agent_streams_that_break_the_protocol_are_refused(env: Env) -> None:
    me = os.getpid()
    report = apb.AgentMessage(report=apb.Report())
    assert _agent_call(env, report) is grpc.StatusCode.INVALID_ARGUMENT
    foreign = pb.XQueueInfo(xqueue_id=(me + 1) << 32 | 1, pid=me)
    reg = apb.AgentMessage(register=apb.Register(pid=me, xqueues=[foreign]))
    assert _agent_call(env, reg) is grpc.StatusCode.INVALID_ARGUMENT
    liar = apb.AgentMessage(register=apb.Register(pid=1))
    assert _agent_call(env, liar) is grpc.StatusCode.PERMISSION_DENIED
    ok = apb.AgentMessage(register=apb.Register(pid=me))
    assert _agent_call(env, ok, ok) is grpc.StatusCode.INVALID_ARGUMENT
    assert env.daemon.serving()


def test_garbage_bytes_and_many_idle_connections_leave_the_daemon_serving(env: Env) -> None:
    idle = []
    for i in range(200):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(env.daemon.socket))
        if i % 2:
            s.sendall(os.urandom(512))
        idle.append(s)
    assert env.daemon.serving()
    for s in idle:
        s.close()
    assert env.daemon.serving()


def test_health_and_reflection_are_on(env: Env) -> None:
    channel = grpc.insecure_channel(f"unix:{env.daemon.socket}")
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "xsched.v1.ControlService", "xsched.v1.AgentService"):
        resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    names = {s.name for a in answers for s in a.list_services_response.service}
    assert {"xsched.v1.ControlService", "xsched.v1.AgentService", "grpc.health.v1.Health"} <= names


def test_a_second_daemon_on_the_same_socket_refuses_to_start(env: Env) -> None:
    import subprocess
    import sys

    from tests.daemon.conftest import ROOT, _env

    r = subprocess.run(
        [sys.executable, "-m", "xschedd.cli", "--socket", str(env.daemon.socket), "--state-dir", str(env.dir / "s2")],
        capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=20, check=False,
    )  # fmt: skip
    assert r.returncode == 1
    assert "already" in r.stderr or "another xschedd" in r.stderr
    assert env.daemon.serving()


def test_a_stale_socket_is_removed(make_env) -> None:
    env = make_env(start=False)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(env.daemon.socket))  # bound, never listening: what a crash leaves behind
    stale.close()
    env.daemon.start()
    assert env.daemon.serving()
