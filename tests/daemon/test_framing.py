"""The native agent stream's framing: messages split and joined at any byte boundary."""

from __future__ import annotations

import pytest

from protos.xsched.v1 import agent_pb2 as apb
from protos.xsched.v1 import types_pb2 as pb
from tests.daemon.conftest import RecordingTransport
from xschedd.agents import AgentSession, SocketSession, operation_bytes
from xschedd.auth import Peer
from xschedd.framing import MAGIC, FrameReader, FrameTooLarge, MalformedFrame, frame


def _event(n: int) -> apb.AgentMessage:
    info = pb.XQueueInfo(xqueue_id=7 << 32 | n, pid=7, name=f"q{n}")
    return apb.AgentMessage(event=apb.XQueueEvent(kind=pb.EVENT_KIND_READY, info=info))


def test_messages_come_out_whole_whatever_the_chunks() -> None:
    msgs = [_event(n) for n in range(1, 6)] + [apb.AgentMessage(report=apb.Report())]
    data = b"".join(frame(m) for m in msgs)
    for chunk in (1, 3, 7, len(data)):
        reader = FrameReader(apb.AgentMessage.FromString)
        out = []
        for i in range(0, len(data), chunk):
            out += reader.feed(data[i : i + chunk])
        assert out == msgs
        assert reader.buffered == 0


def test_an_empty_message_is_a_frame_too() -> None:
    reader = FrameReader(apb.AgentMessage.FromString)
    assert reader.feed(frame(apb.AgentMessage())) == [apb.AgentMessage()]


def test_a_frame_over_the_limit_is_refused_from_its_header() -> None:
    reader = FrameReader(apb.AgentMessage.FromString, max_bytes=64)
    with pytest.raises(FrameTooLarge, match="over the limit of 64"):
        reader.feed((1 << 30).to_bytes(4, "big"))  # nothing that big is waited for


def test_bytes_that_do_not_parse_are_malformed() -> None:
    garbage = b"\xff\xff\xff\x0f garbage"
    with pytest.raises(MalformedFrame):
        FrameReader(apb.AgentMessage.FromString).feed(len(garbage).to_bytes(4, "big") + garbage)


def test_the_magic_cannot_be_taken_for_http2() -> None:
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    assert not preface.startswith(MAGIC[:1]) and MAGIC.endswith(b"\n")


def test_encoded_operations_concatenate_into_one_operations_message() -> None:
    changes = [((7 << 32) | 1, True), ((7 << 32) | 2, False), ((7 << 32) | 3, True)]
    msg = apb.DaemonMessage()
    msg.operations.MergeFromString(b"".join(operation_bytes(x, s) for x, s in changes))
    assert [(op.xqueue_id, op.WhichOneof("kind")) for op in msg.operations.ops] == [
        ((7 << 32) | 1, "suspend"), ((7 << 32) | 2, "resume"), ((7 << 32) | 3, "suspend"),
    ]  # fmt: skip


@pytest.mark.parametrize("n", [1, 3, 40])  # 40 operations: a length over one varint byte
def test_a_decisions_operations_framed_as_bytes_parse_as_the_message_grpc_agents_get(n: int) -> None:
    changes = [((4_000_000 + i) << 32 | 7, i % 2 == 0) for i in range(n)]
    payload = b"".join(operation_bytes(x, s) for x, s in changes)
    transport = RecordingTransport()
    SocketSession(Peer("unix", "test", 0), transport).send_operations(payload)  # type: ignore[arg-type]
    (native,) = transport.messages()
    grpc_session = AgentSession(Peer("unix", "test", 0))
    grpc_session.send_operations(payload)
    assert native == grpc_session._outbox.get_nowait()
    assert [(op.xqueue_id, op.WhichOneof("kind") == "suspend") for op in native.operations.ops] == changes
