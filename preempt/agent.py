"""The agent: connects this process's XQueues to xschedd (XSCHED_SCHEDULER=GLB).

It registers the process and its XQueues on one stream to the daemon, forwards their
status changes, reports task latencies and gauges every REPORT_INTERVAL_S (which doubles
as its heartbeat), and applies the operations the daemon sends back. On the daemon's
Unix socket the stream is the native one (xschedd/framing.py); over TCP it is gRPC
(AgentService.Connect); preempt/agent_links.py has both. A daemon that closes the native
stream before registering us (xschedd from before the native stream relays it to gRPC,
which drops it) gets the next try over gRPC on the same socket; after a gRPC session,
the next try is native again.

Fail-open: when the daemon is gone, refuses us, or is silent for longer than the lease,
the agent resumes every XQueue and the application keeps working unscheduled; it retries
with backoff and re-registers when the daemon is back.

Threads: the agent owns one thread ("xsched-agent") running an asyncio loop: it connects,
reads the daemon's messages and applies operations (suspend/resume do not block), sends
reports and watches the lease. While the daemon gives it suspend gates
(xschedd/gates.py), a second thread ("xsched-gates") sleeps on the gate page's futex and
pumps the XQueues that the daemon ungated while they were stalled, ahead of the resume
operation. XQueue listeners run on the XQueues' threads and hand
their event to the link themselves (a non-blocking send: no hop through the agent's
loop, which would cost a thread wake-up on the control path); they never wait on the
network. `add`, `remove`, `hint` and `set_gauge` may be called from any thread; `_lock`
guards what they share with the loop (see `__init__`).

The GIL: a thread that wakes up waits for a CPU-busy Python thread to let go of the GIL
for up to the interpreter's switch interval, 5 ms by default; that would be the agent's
delay in applying an operation whenever the application computes in Python. The agent
lowers the interval to SWITCH_INTERVAL_S unless the application changed it first.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import logging
import os
import random
import sys
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from hal.paths import daemon_socket
from preempt import config as env_names
from preempt.agent_links import GrpcLink, LinkOverflow, LinkRefused, UnixLink, first_to_end
from preempt.errors import ConfigError, PreemptError
from preempt.xqueue import EventKind, XQueue, XQueueEvent, XQueueInfo, XQueueState, check_params
from protos.xsched.v1 import agent_pb2 as apb
from protos.xsched.v1 import types_pb2 as pb
from xschedd.framing import FrameError
from xschedd.gates import GatePage, slot_of
from xschedd.policy.hintbook import HintBook, hint_pid, hint_xqueue
from xschedd.policy.hints import Hint
from xschedd.policy.wire import hint_to_proto

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 2.0
REPORT_INTERVAL_S = 0.2  # at least every 250 ms, as the protocol promises
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 1.0
LATENCY_KEEP = 4096
GATE_WAKE_TIMEOUT_S = 1.0  # the gate thread's backstop: it is woken when the session ends
ECHO_DELAY_S = 0.01  # how late an operation's own SUSPENDED/RESUMED events go to the daemon
# The agent thread must get the GIL soon after the daemon's operation arrives, also when an
# application thread is busy in Python: at the interpreter's default (5 ms) it can wait
# that long; see `Agent.__init__`.
SWITCH_INTERVAL_S = 0.0005
_PYTHON_SWITCH_INTERVAL_S = 0.005

_EVENT_KINDS = {
    EventKind.READY: pb.EVENT_KIND_READY,
    EventKind.IDLE: pb.EVENT_KIND_IDLE,
    EventKind.SUSPENDED: pb.EVENT_KIND_SUSPENDED,
    EventKind.RESUMED: pb.EVENT_KIND_RESUMED,
    EventKind.CONFIGURED: pb.EVENT_KIND_CONFIGURED,
    EventKind.TASK: pb.EVENT_KIND_TASK,
    EventKind.CLOSED: pb.EVENT_KIND_CLOSED,
}
_ECHOES = (EventKind.SUSPENDED, EventKind.RESUMED)
_STATUS_CHANGES = (EventKind.READY, EventKind.IDLE)


@dataclass(frozen=True)
class AgentConfig:
    target: str  # a gRPC target: unix:/path or host:port
    lease_s: float = DEFAULT_LEASE_S
    token: str | None = None
    report_interval_s: float = REPORT_INTERVAL_S


def agent_config(env: Mapping[str, str] | None = None) -> AgentConfig:
    """XSCHED_SERVER (HOST:PORT) wins over XSCHED_SOCKET, else the default socket."""
    env = os.environ if env is None else env
    server = env.get(env_names.SERVER, "").strip()
    sock = env.get(env_names.SOCKET, "").strip()
    if server:
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"{env_names.SERVER}={server!r}: expected HOST:PORT")
        target = server
    else:
        target = f"unix:{Path(sock) if sock else daemon_socket()}"
    lease = DEFAULT_LEASE_S
    raw = env.get(env_names.LEASE, "").strip()
    if raw:
        try:
            lease = float(raw)
        except ValueError:
            lease = -1.0
        if not 0 < lease <= 3600:
            raise ConfigError(f"{env_names.LEASE}={raw!r}: expected seconds in (0, 3600]")
    return AgentConfig(target, lease, env.get(env_names.TOKEN) or None)


def info_to_proto(info: XQueueInfo) -> pb.XQueueInfo:
    return fill_info_proto(pb.XQueueInfo(), info)


def fill_info_proto(out: pb.XQueueInfo, info: XQueueInfo) -> pb.XQueueInfo:
    """Set every field of `out` from `info`; returns `out`."""
    out.xqueue_id = info.xqueue_id
    out.name = info.name
    out.pid = info.pid
    out.device = info.device
    out.state = pb.XQUEUE_STATE_READY if info.state is XQueueState.READY else pb.XQUEUE_STATE_IDLE
    out.suspended = info.suspended
    out.level = int(info.level)
    out.threshold = info.threshold
    out.batch_size = info.batch_size
    out.pending = info.pending
    out.in_flight = info.in_flight
    out.submitted = info.submitted
    out.completed = info.completed
    return out


def _ready_for_us(xq: XQueue, kind: int, info: XQueueInfo) -> int:
    """For a READY message (`kind`), how long `info`'s queue has been ready, in whole
    microseconds; else 0. The news of a task's start may leave while the task runs
    (preempt.xqueue)."""
    if kind != pb.EVENT_KIND_READY or info.ready_since is None or info.state is not XQueueState.READY:
        return 0
    return max(0, int((xq.clock.now() - info.ready_since) * 1e6))


class _LeaseExpired(Exception):
    pass


class _Latencies:
    def __init__(self) -> None:
        self.busy: deque[float] = deque(maxlen=LATENCY_KEEP)
        self.task: deque[float] = deque(maxlen=LATENCY_KEEP)


class Agent:
    """This process's link to xschedd; see the module docstring for threads and fail-open."""

    def __init__(self, config: AgentConfig | None = None) -> None:
        self.config = config or agent_config()
        self.lease_s = self.config.lease_s
        if sys.getswitchinterval() == _PYTHON_SWITCH_INTERVAL_S:  # an application's own choice stays
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.connected = threading.Event()  # set while registered (tests and tools watch it)
        self.registrations = 0
        self._hints = HintBook()
        self._hints_lock = threading.Lock()
        self._gauges: dict[str, float] = {}
        self._gauges_lock = threading.Lock()
        # `_lock` guards the XQueues, their latencies and the link, and orders what is sent:
        # a message is built (with a fresh info()) and handed to the link under it. Never
        # held while calling into an XQueue that emits events (suspend, resume, set_*).
        self._lock = threading.Lock()
        self._xqueues: dict[int, XQueue] = {}
        self._latencies: dict[int, _Latencies] = {}
        self._link: UnixLink | GrpcLink | None = None  # set once the register is on its way
        self._gates: GatePage | None = None  # this session's suspend gates (xschedd/gates.py)
        # Status events held back, one per XQueue however many changes (see `_listener`):
        # XQueue id -> whether it became ready or idle meanwhile (the daemon decides anew).
        self._coalesced: dict[int, bool] = {}
        # XQueue id -> its status message, refilled for each send over a link that
        # serializes at once (`_status_message_locked`)
        self._status: dict[int, apb.AgentMessage] = {}
        self._applying = False  # the agent thread is applying the daemon's operations
        self._echo_timer: asyncio.TimerHandle | None = None
        self._last_heard = 0.0
        # A daemon on the Unix socket that closed the native stream before registering us
        # speaks only gRPC (xschedd before the native stream): the next try uses gRPC there.
        self._grpc_on_unix = False
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._main: asyncio.Task | None = None
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="xsched-agent", daemon=True
        )
        self._thread.start()
        started.wait()
        atexit.register(self.close)

    # -- the application's side (any thread) ---------------------------------------------
    def add(self, xq: XQueue, hints: Iterable[Hint] = ()) -> None:
        """Schedule `xq` through the daemon, with the application's hints for it."""
        hints = list(hints)
        with self._hints_lock:
            for hint in hints:
                self._hints.put(hint)
        xq.add_listener(self._listener)  # first: a change from now on is seen (or announced)
        with self._lock:
            self._xqueues[xq.id] = xq
            self._latencies[xq.id] = _Latencies()
            gates = self._gates
            self._send_locked(apb.AgentMessage(event=apb.XQueueEvent(
                kind=pb.EVENT_KIND_CONFIGURED, info=info_to_proto(xq.info()),
                hints=[hint_to_proto(h) for h in hints],
            )))  # fmt: skip
        if gates is not None:
            _gate(xq, gates)
            with self._lock:
                dropped = self._gates is not gates
            if dropped:  # the session ended meanwhile, and may have missed this queue
                xq.set_gate(None)

    def remove(self, xq: XQueue) -> None:
        """Stop scheduling `xq`; it is resumed so that it is never left suspended."""
        xq.remove_listener(self._listener)
        xq.set_gate(None)
        with self._lock:
            if self._xqueues.pop(xq.id, None) is not None:
                info = info_to_proto(xq.info())
                self._send_locked(apb.AgentMessage(event=apb.XQueueEvent(kind=pb.EVENT_KIND_CLOSED, info=info)))
            self._latencies.pop(xq.id, None)
            self._status.pop(xq.id, None)
        xq.resume()

    def hint(self, hint: Hint) -> None:
        """Change one of this process's hints at run time (sent to the daemon)."""
        with self._hints_lock:
            self._hints.put(hint)
        xq_id = hint_xqueue(hint)
        with self._lock:
            xq = self._xqueues.get(xq_id) if xq_id is not None else None
            if xq is None:
                return  # process-wide hints and hints of unknown queues go with the next register
            self._send_locked(apb.AgentMessage(event=apb.XQueueEvent(
                kind=pb.EVENT_KIND_CONFIGURED, info=info_to_proto(xq.info()), hints=[hint_to_proto(hint)],
            )))  # fmt: skip

    def gate_stamps(self, xqueue_id: int) -> tuple[float | None, float | None]:
        """When the daemon last set and last cleared this XQueue's gate (time.monotonic())."""
        with self._lock:
            gates = self._gates
        return (None, None) if gates is None else gates.stamps(xqueue_id)

    def set_gauge(self, name: str, value: float) -> None:
        """A workload gauge (e.g. kv_blocks_used), reported with the next report."""
        with self._gauges_lock:
            self._gauges[name] = float(value)

    def close(self, timeout: float = 2.0) -> None:
        """Leave the daemon (resuming every XQueue) and stop the agent thread."""
        if self._closing:
            return
        self._closing = True
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._stop)
        self._thread.join(timeout)

    def _listener(self, event: XQueueEvent) -> None:
        """On the thread that changed the XQueue: straight to the link, no hop via the loop."""
        xq_id = event.info.xqueue_id
        with self._lock:
            lat = self._latencies.get(xq_id)
            if lat is not None and event.latency_s is not None:
                (lat.task if event.kind is EventKind.TASK else lat.busy).append(event.latency_s)
            if event.kind is EventKind.TASK:
                return  # tasks go in reports
            xq = self._xqueues.get(xq_id)
            if xq is None:
                return
            link = self._link
            if event.kind is EventKind.CLOSED:
                self._xqueues.pop(xq_id, None)
                self._latencies.pop(xq_id, None)
                self._coalesced.pop(xq_id, None)
                self._status.pop(xq_id, None)
                info = event.info
            elif link is None:
                return  # while disconnected, the next register says it all
            elif self._applying and event.kind in _ECHOES and threading.get_ident() == self._thread.ident:
                # The daemon's own operation taking effect: it does not wait for this news,
                # so it goes a little later, out of the way of the decisions that matter.
                self._coalesced.setdefault(xq_id, False)
                if self._echo_timer is None:
                    self._echo_timer = self._loop.call_later(ECHO_DELAY_S, self._send_coalesced)
                return
            elif link.backlogged:  # the daemon lags: only the latest status matters
                changed = self._coalesced.get(xq_id, False) or event.kind in _STATUS_CHANGES
                self._coalesced[xq_id] = changed
                return
            elif event.kind is EventKind.IDLE and xq.state is XQueueState.READY:
                # Ready again already (tasks back to back): the READY of the next task
                # says all this would, and a message costs the launching thread ~40-65 us
                # at the start of that task.
                return
            else:
                info = xq.info()  # fresh: events of one queue may reach us out of order
                self._coalesced.pop(xq_id, None)  # what this sends supersedes what was held
            if link is None:
                return
            kind = _EVENT_KINDS[event.kind]
            ready_for_us = _ready_for_us(xq, kind, info)
            if event.kind in _STATUS_CHANGES and link.serializes_at_send:
                link.send(self._status_message_locked(kind, info, ready_for_us))
            else:
                link.send(apb.AgentMessage(event=apb.XQueueEvent(
                    kind=kind, info=info_to_proto(info), ready_for_us=ready_for_us,
                )))  # fmt: skip

    def _status_message_locked(
        self, kind: int, info: XQueueInfo, ready_for_us: int
    ) -> apb.AgentMessage:
        """The queue's READY/IDLE message, one per queue, refilled for this send: it goes
        out at every task's start, on the application's thread, and building it anew (the
        message, its event and info) cost that thread ~20 us on the H100 host, against
        ~5 us to refill it. Only for a link that serializes in `send`."""
        msg = self._status.get(info.xqueue_id)
        if msg is None:
            msg = self._status[info.xqueue_id] = apb.AgentMessage(event=apb.XQueueEvent())
        msg.event.kind = kind
        msg.event.ready_for_us = ready_for_us
        fill_info_proto(msg.event.info, info)
        return msg

    def _send_coalesced(self) -> None:
        """On the loop, when the link drains or the echo delay is over: send the status of
        the XQueues held back, in one write (while the link is backlogged, its drain brings
        us back here)."""
        with self._lock:
            self._echo_timer = None
            link = self._link
            if link is None or link.backlogged:
                return
            msgs = []
            for xq_id, changed in self._coalesced.items():
                xq = self._xqueues.get(xq_id)
                if xq is None:
                    continue
                info = xq.info()
                if changed:
                    kind = pb.EVENT_KIND_READY if info.state is XQueueState.READY else pb.EVENT_KIND_IDLE
                else:
                    kind = pb.EVENT_KIND_SUSPENDED if info.suspended else pb.EVENT_KIND_RESUMED
                msgs.append(apb.AgentMessage(event=apb.XQueueEvent(
                    kind=kind, info=info_to_proto(info), ready_for_us=_ready_for_us(xq, kind, info),
                )))  # fmt: skip
            self._coalesced.clear()
            if msgs:
                link.send(*msgs)

    def _send_locked(self, msg: apb.AgentMessage) -> None:
        if self._link is not None:
            self._link.send(msg)

    def _send(self, msg: apb.AgentMessage) -> None:
        with self._lock:
            self._send_locked(msg)

    # -- the agent loop ----------------------------------------------------------------
    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._main = self._loop.create_task(self._connect_forever())
        started.set()
        try:
            self._loop.run_until_complete(self._main)
        except asyncio.CancelledError:
            pass
        finally:
            self._fail_open()
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def _stop(self) -> None:
        if self._main is not None:
            self._main.cancel()

    async def _connect_forever(self) -> None:
        backoff = BACKOFF_MIN_S
        while not self._closing:
            registered_before = self.registrations
            native = self.config.target.startswith("unix:") and not self._grpc_on_unix
            try:
                await self._session(native)
            except asyncio.CancelledError:
                raise
            except (ConnectionResetError, FrameError) as exc:
                if native and self.registrations == registered_before:
                    log.warning("xschedd did not take the native agent stream (%s): trying gRPC on its socket", _describe(exc))
                    self._grpc_on_unix = True
                else:
                    log.debug("xschedd stream ended: %s", _describe(exc))
            except (grpc.aio.AioRpcError, OSError) as exc:
                log.debug("xschedd stream ended: %s", _describe(exc))
            except (_LeaseExpired, LinkOverflow, LinkRefused) as exc:
                log.warning("xschedd: %s; resuming every XQueue", _describe(exc))
            except Exception as exc:  # noqa: BLE001 (never let the agent die: the app must keep working)
                log.warning("xschedd agent error: %r", exc)
            finally:
                with self._lock:
                    self._link = None
                    self._coalesced.clear()
                    if self._echo_timer is not None:
                        self._echo_timer.cancel()
                        self._echo_timer = None
                self.connected.clear()
                self._fail_open()
            if not native:
                self._grpc_on_unix = False  # whatever ended it, the next try is native first
            if self.registrations > registered_before:
                backoff = BACKOFF_MIN_S
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _session(self, native: bool) -> None:
        target = self.config.target
        if native:
            link: UnixLink | GrpcLink = UnixLink(target.removeprefix("unix:"), self._on_message, self._send_coalesced)
        else:
            link = GrpcLink(target, self.config.token, self._on_message, self._send_coalesced)
        loop = asyncio.get_running_loop()
        try:
            await link.open()
            self._last_heard = loop.time()
            with self._lock:  # the register's snapshot, then every change after it
                self._link = link
                self._coalesced.clear()
                link.send(self._register_message())
            await first_to_end(link.run(), self._report(), self._watch_lease())
        finally:
            with self._lock:
                self._link = None
            self._drop_gates()
            await link.close()

    def _register_message(self) -> apb.AgentMessage:
        with self._hints_lock:
            hints = [h for h in self._hints if hint_pid(h) in (None, os.getpid())]
        return apb.AgentMessage(register=apb.Register(
            pid=os.getpid(), name=process_name(), nice=_nice(),
            xqueues=[info_to_proto(xq.info()) for xq in self._xqueues.values()],
            hints=[hint_to_proto(h) for h in hints],
        ))  # fmt: skip

    def _on_message(self, msg: apb.DaemonMessage) -> bool:
        """A message from the daemon (on the loop); False ends the stream."""
        self._last_heard = self._loop.time()
        kind = msg.WhichOneof("body")
        if kind == "operations":
            self._applying = True
            try:
                for op in msg.operations.ops:
                    self._apply(op)
            finally:
                self._applying = False
        elif kind == "operation":
            self._apply(msg.operation)
        elif kind == "registered":
            self.lease_s = msg.registered.lease_s or self.config.lease_s
            if msg.registered.gates:
                self._map_gates(msg.registered.gates)
            self.registrations += 1
            self.connected.set()
            log.info("registered with xschedd (policy %s)", msg.registered.policy)
        elif kind == "shutdown":
            log.info("xschedd is going away (%s); resuming every XQueue", msg.shutdown.reason)
            return False
        return True

    def _map_gates(self, path: str) -> None:
        """The daemon's suspend gates for this session (on the loop, on `registered`)."""
        try:
            gates = GatePage.open(path)
        except (OSError, ValueError) as exc:  # operations alone still work
            log.warning("no suspend gates (%s): %s", path, exc)
            return
        with self._lock:
            self._gates = gates
            xqueues = list(self._xqueues.values())
        for xq in xqueues:
            _gate(xq, gates)
        gates.mark_mapped()  # the daemon may now leave level-1 suspends and resumes to them
        threading.Thread(target=self._pump_stalled, args=(gates,), name="xsched-gates", daemon=True).start()

    def _drop_gates(self) -> None:
        """The session is over: nothing may stay held by its gates."""
        with self._lock:
            gates, self._gates = self._gates, None
            xqueues = list(self._xqueues.values())
        if gates is not None:
            gates.wake()  # the gate thread ends
            for xq in xqueues:
                xq.set_gate(None)

    def _pump_stalled(self, gates: GatePage) -> None:
        """The gate thread of a session: whenever the daemon wakes the page, pump the
        XQueues whose gate it cleared while they were stalled."""
        pid = os.getpid() << 32
        seen = gates.wakes
        while True:
            seen = gates.wait_for_wake(seen, GATE_WAKE_TIMEOUT_S)
            with self._lock:
                if self._gates is not gates:
                    return
            stalled = gates.stalled.tobytes()
            slot = stalled.find(1)
            while slot != -1:
                if not gates.flags[slot]:
                    gates.stalled[slot] = 0  # before the pump, which marks it again if gated anew
                    with self._lock:
                        xq = self._xqueues.get(pid | slot)
                    if xq is not None:
                        xq.pump()
                slot = stalled.find(1, slot + 1)

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(self.config.report_interval_s)
            batches = []
            with self._lock:
                for xq_id, lat in self._latencies.items():
                    if lat.busy or lat.task:
                        batches.append(apb.LatencyBatch(xqueue_id=xq_id, busy_s=list(lat.busy), task_s=list(lat.task)))
                        lat.busy.clear()
                        lat.task.clear()
            with self._gauges_lock:
                gauges = dict(self._gauges)
            self._send(apb.AgentMessage(report=apb.Report(latencies=batches, gauges=gauges, nice=_nice())))

    async def _watch_lease(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(self.lease_s / 4, 0.25))
            if loop.time() - self._last_heard > self.lease_s:
                raise _LeaseExpired(f"no word from xschedd for {self.lease_s} s")

    def _apply(self, op: apb.Operation) -> None:
        with self._lock:
            xq = self._xqueues.get(op.xqueue_id)
        error = ""
        kind = op.WhichOneof("kind")
        if xq is None:
            error = f"no XQueue {op.xqueue_id:#x} in process {os.getpid()}"
        else:
            try:
                if kind == "suspend":
                    xq.suspend(by_gate=True)  # level 1 and gated: the gate holds it
                elif kind == "resume":
                    xq.resume()
                elif kind == "set_priority":  # the daemon's hints changed it: the hardware's
                    xq.hwq.set_priority(op.set_priority.priority)
                elif kind == "configure":
                    cfg = op.configure
                    threshold = cfg.threshold if cfg.HasField("threshold") else xq.threshold
                    batch = cfg.batch_size if cfg.HasField("batch_size") else min(xq.batch_size, threshold)
                    level = cfg.level if cfg.HasField("level") else int(xq.level)
                    check_params(level, threshold, batch, xq.hwq.max_level)  # all or nothing
                    if cfg.HasField("threshold"):
                        xq.set_threshold(cfg.threshold)
                    if cfg.HasField("batch_size"):
                        xq.set_batch_size(cfg.batch_size)
                    if cfg.HasField("level"):
                        xq.set_level(cfg.level)
                else:
                    error = "empty operation"
            except (PreemptError, ValueError) as exc:
                error = str(exc)
            except Exception as exc:  # noqa: BLE001 (the hardware may refuse, e.g. an unsupported level)
                error = f"{type(exc).__name__}: {exc}"
        if xq is not None and kind == "configure":
            # The new state goes before the result, so the daemon's answer shows it.
            info = info_to_proto(xq.info())
            self._send(apb.AgentMessage(event=apb.XQueueEvent(kind=pb.EVENT_KIND_CONFIGURED, info=info)))
        if op.op_id:
            self._send(apb.AgentMessage(result=apb.OperationResult(op_id=op.op_id, ok=not error, error=error)))

    def _fail_open(self) -> None:
        """Resume every XQueue: without the daemon, nothing may stay suspended."""
        with self._lock:
            xqueues = list(self._xqueues.values())
        for xq in xqueues:
            with contextlib.suppress(Exception):
                xq.resume()


def _gate(xq: XQueue, gates: GatePage) -> None:
    slot = slot_of(xq.id)
    if slot is not None:
        xq.set_gate(gates.flags, slot, functools.partial(gates.mark_stalled, slot), gates.stalled)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code()} {exc.details()}"
    return str(exc) or type(exc).__name__


def process_name() -> str:
    """A short, readable name for this process: its module for `python -m pkg.cli`, else
    its script (`serve.py` -> `serve`), as a console shows it."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        parts = spec.name.split(".")
        while len(parts) > 1 and parts[-1] in ("cli", "app", "main", "__main__"):
            parts.pop()
        return parts[-1]
    return Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else f"pid {os.getpid()}"


def _nice() -> int:
    try:
        return os.getpriority(os.PRIO_PROCESS, 0)
    except OSError:
        return 0
