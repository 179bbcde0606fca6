"""The native agent stream on the daemon's Unix socket: the same contract as gRPC's
AgentService (register first, operations back, bad input refused with its status code),
peers known by the kernel's credentials, and an agent that outruns the daemon coalesces.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import grpc
import pytest

from protos.xsched.v1 import agent_pb2 as apb
from protos.xsched.v1 import types_pb2 as pb
from tests.daemon.conftest import Env, wait_for
from xschedd.framing import MAGIC, FrameReader, frame

NOBODY = 65534


def _connect(env: Env) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(str(env.daemon.socket))
    s.sendall(MAGIC)
    return s


def _read(s: socket.socket, until=lambda msgs: False) -> list[apb.DaemonMessage]:
    """Messages until the daemon closes the stream (or `until(messages so far)`)."""
    reader = FrameReader(apb.DaemonMessage.FromString)
    msgs: list[apb.DaemonMessage] = []
    while not until(msgs):
        data = s.recv(65536)
        if not data:
            break
        msgs += reader.feed(data)
    return msgs


def _refusal(env: Env, payload: bytes) -> grpc.StatusCode:
    with _connect(env) as s:
        s.sendall(payload)
        msgs = _read(s)
    errors = [m.error for m in msgs if m.WhichOneof("body") == "error"]
    assert len(errors) == 1 and msgs[-1].WhichOneof("body") == "error", msgs
    return grpc.StatusCode[next(c.name for c in grpc.StatusCode if c.value[0] == errors[0].code)]


def _register(pid: int, *infos: pb.XQueueInfo, hints: tuple[pb.Hint, ...] = ()) -> bytes:
    return frame(apb.AgentMessage(register=apb.Register(pid=pid, name="t", xqueues=infos, hints=hints)))


def _info(n: int, ready: bool = True) -> pb.XQueueInfo:
    me = os.getpid()
    state = pb.XQUEUE_STATE_READY if ready else pb.XQUEUE_STATE_IDLE
    return pb.XQueueInfo(xqueue_id=me << 32 | n, pid=me, device="sim", state=state, name=f"q{n}")


def test_native_streams_that_break_the_protocol_are_refused_with_their_status(env: Env) -> None:
    me = os.getpid()
    codes = grpc.StatusCode
    assert _refusal(env, frame(apb.AgentMessage(report=apb.Report()))) is codes.INVALID_ARGUMENT
    foreign = pb.XQueueInfo(xqueue_id=(me + 1) << 32 | 1, pid=me)
    assert _refusal(env, _register(me, foreign)) is codes.INVALID_ARGUMENT
    assert _refusal(env, _register(1)) is codes.PERMISSION_DENIED  # the kernel says who we are
    assert _refusal(env, _register(me) + _register(me)) is codes.INVALID_ARGUMENT
    garbage = b"\xff\xff\xff\x0f garbage"
    assert _refusal(env, len(garbage).to_bytes(4, "big") + garbage) is codes.INVALID_ARGUMENT
    assert _refusal(env, (64 << 20).to_bytes(4, "big")) is codes.RESOURCE_EXHAUSTED
    assert env.daemon.serving()
    assert "refused agent" in env.daemon.log_text()


def test_the_public_socket_tells_the_native_stream_from_grpc_however_its_bytes_arrive(env: Env) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(env.daemon.socket))
        for byte in MAGIC + _register(os.getpid()):
            s.send(bytes([byte]))
        assert _read(s, lambda m: len(m) >= 1)[0].WhichOneof("body") == "registered"
    assert env.daemon.serving()  # and gRPC still goes through (xschedctl, health, agents)


def test_a_native_agent_registers_and_gets_one_message_per_decision(env: Env) -> None:
    fg, bg = _info(1), _info(2)
    hint = pb.Hint(priority=pb.PriorityHint(xqueue_id=fg.xqueue_id, priority=5))
    with _connect(env) as s:
        s.sendall(_register(os.getpid(), fg, bg, hints=(hint,)))
        msgs = _read(s, lambda m: len(m) >= 2)
        assert msgs[0].WhichOneof("body") == "registered"
        ops = [(op.xqueue_id, op.WhichOneof("kind")) for op in msgs[1].operations.ops]
        assert ops == [(fg.xqueue_id, "resume"), (bg.xqueue_id, "suspend")]
        # fg goes idle (its echo of bg's suspend first): bg may run; then read it back
        echo = pb.XQueueInfo(); echo.CopyFrom(bg); echo.suspended = True
        s.sendall(frame(apb.AgentMessage(event=apb.XQueueEvent(kind=pb.EVENT_KIND_SUSPENDED, info=echo)))
                  + frame(apb.AgentMessage(event=apb.XQueueEvent(kind=pb.EVENT_KIND_IDLE, info=_info(1, ready=False)))))  # fmt: skip
        more = _read(s, lambda m: any(x.WhichOneof("body") == "operations" for x in m))
        ops = [(op.xqueue_id, op.WhichOneof("kind")) for m in more for op in m.operations.ops]
        assert ops == [(bg.xqueue_id, "resume")]
        views = {v.info.name: v for v in env.daemon.xqueues()}
        assert views["q2"].info.suspended and views["q1"].info.state == pb.XQUEUE_STATE_IDLE
    wait_for(lambda: not env.daemon.xqueues(), 5)  # the stream ended: the process is forgotten


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
def test_another_uid_may_register_its_own_process_but_not_claim_ours(make_env, short_dir) -> None:
    os.chmod(short_dir, 0o711)
    env = make_env("--socket-group", str(NOBODY))
    child = os.fork()
    if child == 0:  # as nobody: claim the test's pid, then register our own
        code = 1
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            with _connect(env) as s:
                s.sendall(_register(os.getppid()))
                liar = _read(s)
            with _connect(env) as s:
                s.sendall(_register(os.getpid()))
                ok = _read(s, lambda m: len(m) >= 1)
            refused = liar[-1].WhichOneof("body") == "error" and liar[-1].error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
            code = 0 if refused and ok[0].WhichOneof("body") == "registered" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert "claims pid" in env.daemon.log_text()


def test_an_agent_coalesces_while_the_daemon_stalls_and_keeps_its_session(env: Env) -> None:
    fg = env.workload("name=fg,priority=10,commands=1,command_us=50", duration_s=6)
    bg = env.workload("name=bg,priority=0,commands=4,command_us=500", duration_s=6)
    wait_for(lambda: len(env.daemon.xqueues()) == 2, 10)
    # HPF keeps bg suspended while fg is busy; the agent's echo reaches the daemon's mirror
    wait_for(lambda: any(v.info.name == "bg" and v.info.suspended for v in env.daemon.xqueues()), 5)
    assert env.daemon.proc is not None
    env.daemon.proc.send_signal(signal.SIGSTOP)  # shorter than the lease: nobody fails open
    time.sleep(1.0)
    env.daemon.proc.send_signal(signal.SIGCONT)
    assert fg.wait(20) == 0 and bg.wait(20) == 0, fg.stderr + bg.stderr
    log = env.daemon.log_text()
    for w in (fg, bg):
        assert log.count(f"process {w.pid} ") == 2, log  # registered once, left once
    assert "resuming every XQueue" not in fg.stderr + bg.stderr


def test_an_agent_falls_back_to_grpc_on_a_daemon_without_the_native_stream(make_env) -> None:
    """xschedd from before the native stream drops it (its relay hands every connection to
    gRPC): the agent registers over gRPC on the same socket, and HPF then works as usual."""
    env = make_env(start=False)
    env.daemon.module = "tests.daemon.grpc_only_daemon"
    env.daemon.start()
    fg = env.workload("name=fg,priority=10,commands=1,command_us=50", duration_s=4)
    bg = env.workload("name=bg,priority=0,commands=4,command_us=500", duration_s=4)
    wait_for(lambda: len(env.daemon.xqueues()) == 2, 10)
    wait_for(lambda: any(v.info.name == "bg" and v.info.suspended for v in env.daemon.xqueues()), 5)
    assert fg.wait(20) == 0 and bg.wait(20) == 0, fg.stderr + bg.stderr
    assert "trying gRPC on its socket" in fg.stderr + bg.stderr
