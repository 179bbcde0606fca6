"""The daemon's business logic behind both gRPC services: agents in, operators' requests.

`Daemon` composes the global scheduler, the agent sessions, the state store and the
authorizer; servicers only translate messages and exceptions. Owned by the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Iterable

import grpc

from hal import Level
from protos.xsched.v1 import agent_pb2 as apb
from protos.xsched.v1 import types_pb2 as pb
from xschedd.agents import AgentSession
from xschedd.auth import Authorizer, Peer
from xschedd.errors import AgentUnavailable, InvalidArgument, NotFound, PermissionDenied
from xschedd.gates import GatePage, slot_of
from xschedd.metrics import Metrics
from xschedd.policy import PolicyError
from xschedd.policy import hints as H
from xschedd.policy.hintbook import hint_pid, hint_xqueue
from xschedd.policy.wire import hint_from_proto
from xschedd.scheduler import HINT_GC_INTERVAL_S, GlobalScheduler
from xschedd.state import SavedState, StateStore
from xschedd.status import XQueueRecord
from xschedd.watch import StatusBus

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 2.0
CONFIG_TIMEOUT_S = 2.0
PERSIST_DELAY_S = 0.05
MAX_THRESHOLD = 2**63 - 1
_BLOCK = int(Level.BLOCK)  # a level-1 XQueue: its gate applies its suspends and resumes
_PER_XQUEUE_HINTS = (H.PriorityHint, H.UtilizationHint, H.DeadlineHint, H.LaxityHint)


def _reads_gates(session: AgentSession) -> bool:
    """Whether the agent has a suspend-gate page and has said its XQueues read it."""
    return session.gates is not None and session.gates.mapped


class Daemon:
    def __init__(
        self,
        *,
        policy: str,
        gang: bool,
        saved: SavedState,
        store: StateStore,
        authorizer: Authorizer,
        metrics: Metrics,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.store = store
        self.auth = authorizer
        self.metrics = metrics
        self.lease_s = lease_s
        self.sessions: dict[int, AgentSession] = {}
        self.bus = StatusBus()
        self._persist_handle: asyncio.TimerHandle | None = None
        self.scheduler = GlobalScheduler(
            saved.policy or policy,
            gang=saved.gang if saved.policy else gang,
            hints=saved.hints,
            dispatch=self._dispatch,
            set_priority=self._send_priority,
            gate=self._gate,
            gated=self._gated,
            call_later=self.loop.call_later,
            bus=self.bus,
            persist=self._persist,
            metrics=metrics,
        )
        self._tasks = [
            self.loop.create_task(self._ping_loop()),
            self.loop.create_task(self._gc_loop()),
        ]

    # -- agents ---------------------------------------------------------------------------
    async def run_agent(self, session: AgentSession, requests: AsyncIterator[apb.AgentMessage]) -> None:
        """Serve one gRPC agent stream until it ends; errors close the session with a status."""
        try:
            async for msg in requests:
                if not self.agent_messages(session, (msg,)):
                    return
        finally:
            self.agent_ended(session)

    def agent_messages(self, session: AgentSession, msgs: Iterable[apb.AgentMessage]) -> bool:
        """Take what an agent sent (in order, deciding once for all of them); the first
        must be its register. A message that breaks the protocol or the rules closes the
        session with its status and returns False; the daemon itself never fails here."""
        events = 0
        try:
            with self.scheduler.batch():
                for msg in msgs:
                    if session.closed:
                        return False
                    events += msg.HasField("event")
                    if session.pid is None:
                        if msg.WhichOneof("body") != "register":
                            raise InvalidArgument("the first message on an agent stream must be register")
                        self._register(session, msg.register)
                    else:
                        self._agent_message(session, msg)
            return not session.closed
        except (InvalidArgument, PolicyError) as exc:
            log.warning("agent %s: %s", session.peer.describe(), exc)
            session.close(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except PermissionDenied as exc:
            log.warning("refused agent %s: %s", session.peer.describe(), exc)
            self.metrics.refusal("Connect")
            session.close(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        except NotFound as exc:
            session.close(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except Exception as exc:  # a bug must cost this stream, not the daemon
            log.exception("agent %s: internal error", session.peer.describe())
            session.close(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")
        finally:
            if events:
                self.metrics.events(events)
        return False

    def agent_ended(self, session: AgentSession) -> None:
        """The stream is over (either side ended it): forget its process."""
        self._detach(session)
        session.close()

    def _register(self, session: AgentSession, reg: apb.Register) -> None:
        peer = session.peer
        if reg.pid == 0:
            raise InvalidArgument("register: pid must be set")
        if peer.pid is not None and peer.pid != reg.pid:
            raise PermissionDenied(f"register: claims pid {reg.pid} but the socket's peer is pid {peer.pid}")
        hints = [hint_from_proto(h) for h in reg.hints]
        old = self.sessions.get(reg.pid)
        if old is not None and old is not session:
            old.pid = None  # its end must not unregister the new session's process
            old.close(grpc.StatusCode.ABORTED, "replaced by a newer registration of this process")
        session.pid = reg.pid
        self.sessions[reg.pid] = session
        if peer.transport == "unix" and session.gates is None:
            try:
                session.gates = GatePage.create(reg.pid, peer.uid)
            except OSError as exc:  # no shared memory for it: operations alone still work
                log.warning("agent %s: no suspend gates: %s", peer.describe(), exc)
        gates = str(session.gates.path) if session.gates is not None else ""
        registered = apb.Registered(lease_s=self.lease_s, policy=self.scheduler.policy_name, gates=gates)
        session.send(apb.DaemonMessage(registered=registered))
        self.scheduler.register(reg.pid, peer.uid, reg.name, reg.nice, reg.xqueues, hints)

    def _agent_message(self, session: AgentSession, msg: apb.AgentMessage) -> None:
        pid = session.pid
        assert pid is not None
        kind = msg.WhichOneof("body")
        if kind == "event":
            ev = msg.event
            latency = ev.latency_s if ev.HasField("latency_s") else None
            hints = [hint_from_proto(h) for h in ev.hints]
            ready_for_s = ev.ready_for_us / 1e6
            self.scheduler.xqueue_event(pid, ev.kind, ev.info, latency, hints, ready_for_s)
        elif kind == "report":
            self.scheduler.report(pid, msg.report.latencies, dict(msg.report.gauges), msg.report.nice)
        elif kind == "result":
            session.resolve(msg.result)
        elif kind == "register":
            raise InvalidArgument("register may be sent only once per stream")
        else:
            raise InvalidArgument("empty agent message")

    def _detach(self, session: AgentSession) -> None:
        pid = session.pid
        if pid is not None and self.sessions.get(pid) is session:
            del self.sessions[pid]
            self.scheduler.unregister(pid)

    def _dispatch(self, pid: int, changes: list[tuple[int, bool]]) -> None:
        """The operations of one decision for one process, in one message, sent at once;
        those that its suspend gates have applied already (level-1 XQueues in the page)
        follow a little later, out of the way of the decisions that matter."""
        session = self.sessions.get(pid)
        if session is None:
            return
        if not _reads_gates(session):
            session.send_changes(changes)
            return
        recs = self.scheduler.xqueues
        now: list[tuple[int, bool]] = []
        later: list[tuple[int, bool]] = []
        for change in changes:
            rec = recs.get(change[0])
            gated = rec is not None and rec.level == _BLOCK and slot_of(change[0]) is not None
            (later if gated else now).append(change)
        session.send_changes(now, later)

    def _gate(self, pid: int, changes: list[tuple[int, bool]]) -> None:
        """A decision's suspends and resumes into the process's gate page, before any
        operation is sent (xschedd/gates.py)."""
        session = self.sessions.get(pid)
        if session is not None and session.gates is not None:
            session.gates.apply(changes)

    def _gated(self, xqueue_id: int) -> bool:
        """Whether the XQueue's process has a suspend-gate page with a slot for it: a
        decision then stops its launches as it is written (`_gate`)."""
        session = self.sessions.get(xqueue_id >> 32)
        return session is not None and _reads_gates(session) and slot_of(xqueue_id) is not None

    def _send_priority(self, pid: int, xqueue_id: int, priority: int) -> None:
        """An XQueue's priority for its hardware queue (GlobalScheduler._push_priority)."""
        session = self.sessions.get(pid)
        if session is not None:
            op = apb.Operation(xqueue_id=xqueue_id, set_priority=apb.SetPriority(priority=priority))
            session.send(apb.DaemonMessage(operation=op))

    async def _ping_loop(self) -> None:
        ping = apb.DaemonMessage(ping=apb.Ping())
        while True:
            await asyncio.sleep(self.lease_s / 4)
            for session in list(self.sessions.values()):
                session.send(ping)

    async def _gc_loop(self) -> None:
        while True:
            await asyncio.sleep(HINT_GC_INTERVAL_S)
            self.scheduler.collect_hints()

    # -- operators -----------------------------------------------------------------------
    def xqueues(self, pid: int = 0) -> list[XQueueRecord]:
        if pid and pid not in self.scheduler.processes:
            raise NotFound(f"no process {pid} is registered")
        recs = self.scheduler.xqueues.values()
        return sorted((r for r in recs if not pid or r.pid == pid), key=lambda r: r.xqueue_id)

    def set_policy(self, peer: Peer, name: str, gang: bool | None) -> None:
        self.auth.require_admin(peer, "changing the policy")
        self.scheduler.set_policy(name or None, gang)
        log.info("%s set policy %s gang=%s", peer.describe(), self.scheduler.policy_name, self.scheduler.gang)

    def send_hint(self, peer: Peer, msg: pb.Hint, pid: int) -> list[int]:
        """Apply a hint (to every XQueue of `pid` if given); return the XQueues it reached."""
        if pid:
            return self._hint_process(peer, msg, pid)
        hint = hint_from_proto(msg)
        xq = hint_xqueue(hint)
        if xq is not None:
            rec = self.scheduler.xqueue(xq)
            self.auth.require_owner(peer, self._owner(rec.pid), f"hinting XQueue {xq:#x}")
        elif hint_pid(hint) is not None:
            target = hint_pid(hint)
            if target not in self.scheduler.processes:
                raise NotFound(f"no process {target} is registered")
            self.auth.require_owner(peer, self._owner(target), f"hinting process {target}")
        else:
            self.auth.require_admin(peer, f"a global {type(hint).__name__}")
        self.scheduler.hint(hint)
        return [xq] if xq is not None else []

    def _hint_process(self, peer: Peer, msg: pb.Hint, pid: int) -> list[int]:
        proc = self.scheduler.processes.get(pid)
        if proc is None:
            raise NotFound(f"no process {pid} is registered")
        self.auth.require_owner(peer, proc.uid, f"hinting process {pid}")
        template = hint_from_proto(msg)
        if not isinstance(template, _PER_XQUEUE_HINTS):
            raise InvalidArgument(f"--pid applies XQueue hints only, not {type(template).__name__}")
        if template.xqueue_id != 0:
            raise InvalidArgument("a hint sent with a pid must leave xqueue_id at 0")
        reached = sorted(proc.xqueues)
        for xq in reached:
            self.scheduler.hint(_retarget(template, xq))
        return reached

    def hold(self, peer: Peer, xqueue_id: int, held: bool) -> XQueueRecord:
        rec = self.scheduler.xqueue(xqueue_id)
        verb = "suspending" if held else "resuming"
        self.auth.require_owner(peer, self._owner(rec.pid), f"{verb} XQueue {xqueue_id:#x}")
        return self.scheduler.hold(xqueue_id, held)

    async def configure(self, peer: Peer, xqueue_id: int, cfg: pb.XQueueConfig) -> XQueueRecord:
        rec = self.scheduler.xqueue(xqueue_id)
        self.auth.require_owner(peer, self._owner(rec.pid), f"configuring XQueue {xqueue_id:#x}")
        if cfg.HasField("level") and not 1 <= cfg.level <= 3:
            raise InvalidArgument(f"level {cfg.level} is out of range [1, 3]")
        if cfg.HasField("threshold") and not 1 <= cfg.threshold <= MAX_THRESHOLD:
            raise InvalidArgument(f"threshold {cfg.threshold} is out of range [1, 2**63-1]")
        if cfg.HasField("batch_size") and not 1 <= cfg.batch_size <= MAX_THRESHOLD:
            raise InvalidArgument(f"batch_size {cfg.batch_size} is out of range [1, threshold]")
        if not (cfg.HasField("level") or cfg.HasField("threshold") or cfg.HasField("batch_size")):
            raise InvalidArgument("nothing to configure: give level, threshold or batch_size")
        session = self.sessions.get(rec.pid)
        if session is None:
            raise AgentUnavailable(f"process {rec.pid} is not connected")
        await session.request(apb.Operation(xqueue_id=xqueue_id, configure=cfg), CONFIG_TIMEOUT_S)
        return self.scheduler.xqueue(xqueue_id)

    def _owner(self, pid: int) -> int | None:
        proc = self.scheduler.processes.get(pid)
        return None if proc is None else proc.uid

    # -- state and shutdown --------------------------------------------------------------
    def _persist(self, urgent: bool) -> None:
        if urgent:
            if self._persist_handle is not None:
                self._persist_handle.cancel()
                self._persist_handle = None
            self.save()
        elif self._persist_handle is None:
            self._persist_handle = self.loop.call_later(PERSIST_DELAY_S, self.save)

    def save(self) -> None:
        self._persist_handle = None
        try:
            self.store.save(self.scheduler.policy_name, self.scheduler.gang, self.scheduler.hints)
        except OSError as exc:
            log.error("cannot save state to %s: %s", self.store.path, exc)

    async def shutdown(self, reason: str) -> None:
        """Tell every agent to resume its XQueues, then stop the background work."""
        for task in self._tasks:
            task.cancel()
        self.scheduler.shutdown()
        bye = apb.DaemonMessage(shutdown=apb.Shutdown(reason=reason))
        for session in list(self.sessions.values()):
            session.send(bye)
            session.close()
        self.save()


def _retarget(hint: H.Hint, xqueue_id: int) -> H.Hint:
    return dataclasses.replace(hint, xqueue_id=xqueue_id)
