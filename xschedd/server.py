"""Start-up and shutdown of xschedd: one `serve()` coroutine owns both.

Layout on disk: the public socket (0660) is served by xschedd/relay.py, which serves
local agents' native streams itself and relays gRPC to the gRPC server, listening on
`<socket>.d/grpc.sock` in a 0700 directory only the daemon's user can enter. `<socket>.lock` is held (flock) while the daemon lives, which is
how a second daemon knows the socket is taken, and how a stale socket is told apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hal.paths import DAEMON_SOCKET_NAME, daemon_socket
from protos.xsched.v1 import agent_pb2, agent_pb2_grpc, control_pb2, control_pb2_grpc
from xschedd import gates
from xschedd.agent_socket import AgentConnection
from xschedd.auth import Authorizer, PeerTable
from xschedd.cpu_latency import CpuLatencyRequest, bound_has_effect
from xschedd.daemon import DEFAULT_LEASE_S, Daemon
from xschedd.errors import AlreadyRunning, DaemonError
from xschedd.metrics import Metrics
from xschedd.relay import PeerCredProxy
from xschedd.servicers import AgentServicer, ControlServicer, MalformedRequestInterceptor
from xschedd.state import StateStore

log = logging.getLogger(__name__)

SOCKET_NAME = DAEMON_SOCKET_NAME
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
SERVICES = (
    agent_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
    control_pb2.DESCRIPTOR.services_by_name["ControlService"].full_name,
)


def default_socket() -> Path:
    """$XDG_RUNTIME_DIR/xsched/xschedd.sock, else /tmp/xsched-<uid>/xschedd.sock."""
    return daemon_socket()


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "xschedd"


@dataclass(frozen=True)
class DaemonConfig:
    socket: Path
    state_dir: Path
    policy: str = "HPF"
    gang: bool = False
    listen: str | None = None  # HOST:PORT for TCP
    metrics_port: int | None = None
    lease_s: float = DEFAULT_LEASE_S
    admin_group: int | None = None
    socket_group: int | None = None
    allow_remote: bool = False
    token: str | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_connections: int = 1024
    cpu_latency_us: int | None = None  # a PM QoS bound held while serving (xschedd/cpu_latency.py)


class _SocketLock:
    """Holds `<socket>.lock`; refuses when a live daemon holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = None

    def acquire(self, socket_path: Path) -> None:
        self._file = open(self.path, "a+")  # noqa: SIM115 (held for the daemon's life)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            owner = self._file.read().strip() or "?"
            self._file.close()
            raise AlreadyRunning(
                f"another xschedd (pid {owner}) is serving {socket_path}; stop it first or use --socket"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._file.close()
            self._file = None


def _clear_stale(path: Path) -> None:
    """Remove a leftover socket nobody listens on (we hold the lock, so none should)."""
    if not path.exists() and not path.is_symlink():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        log.info("removing stale socket %s", path)
        path.unlink()
        return
    finally:
        probe.close()
    raise AlreadyRunning(f"a live server answers on {path}; stop it first or use --socket")


async def serve(config: DaemonConfig, ready: asyncio.Event | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; return the exit status."""
    loop = asyncio.get_running_loop()
    sock_path = config.socket
    sock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = _SocketLock(sock_path.with_name(sock_path.name + ".lock"))
    lock.acquire(sock_path)
    private = sock_path.with_name(sock_path.name + ".d")
    metrics = None
    server = None
    proxy = None
    daemon = None
    cpu_latency = None
    try:
        if config.cpu_latency_us is not None:
            cpu_latency = CpuLatencyRequest(config.cpu_latency_us)
            log.info("holding the CPUs' wake-up latency at %d us or less while serving", config.cpu_latency_us)
            if not bound_has_effect():
                log.warning("--cpu-latency-us: this kernel has no cpuidle driver, so idle CPUs halt whatever the bound")
        _clear_stale(sock_path)
        if gates.remove_stale():
            log.info("removed the suspend-gate pages of daemons that are gone")
        shutil.rmtree(private, ignore_errors=True)
        private.mkdir(mode=0o700)
        upstream = private / "grpc.sock"
        store = StateStore(config.state_dir)
        saved = store.load()
        if saved.policy and saved.policy != config.policy:
            log.info("restoring policy %s from %s (not --policy %s)", saved.policy, store.path, config.policy)
        metrics = Metrics(config.metrics_port)
        peers = PeerTable()
        options = [
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            ("grpc.max_concurrent_streams", 1000),
        ]
        server = grpc.aio.server(options=options, interceptors=[MalformedRequestInterceptor()])
        tcp_port = None
        if config.listen:
            tcp_port = server.add_insecure_port(config.listen)
            if not tcp_port:
                raise DaemonError(f"cannot listen on {config.listen}")
        authorizer = Authorizer(
            peers,
            admin_group=config.admin_group,
            token=config.token,
            allow_remote=config.allow_remote,
            tcp_port=tcp_port,
        )
        daemon = Daemon(
            policy=config.policy,
            gang=config.gang,
            saved=saved,
            store=store,
            authorizer=authorizer,
            metrics=metrics,
            lease_s=config.lease_s,
        )
        agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentServicer(daemon), server)
        control_pb2_grpc.add_ControlServiceServicer_to_server(ControlServicer(daemon), server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        server.add_insecure_port(f"unix:{upstream}")
        await server.start()
        for name in ("", *SERVICES):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        proxy = PeerCredProxy(
            sock_path,
            upstream,
            peers,
            native=lambda creds, release: AgentConnection(daemon, creds, release, config.max_message_bytes),
            max_connections=config.max_connections,
        )
        await proxy.start(group=config.socket_group)
        daemon.save()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info(
            "xschedd %d serving on %s%s, policy %s%s",
            os.getpid(),
            sock_path,
            f" and {config.listen} (port {tcp_port})" if config.listen else "",
            daemon.scheduler.policy_name,
            " (gang)" if daemon.scheduler.gang else "",
        )
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("shutting down: telling %d agent(s) to resume", len(daemon.sessions))
        for health_name in ("", *SERVICES):
            await health_servicer.set(health_name, health_pb2.HealthCheckResponse.NOT_SERVING)
        return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if daemon is not None:
            await daemon.shutdown("xschedd is stopping")
        if server is not None:
            await server.stop(grace=1.0)
        if proxy is not None:
            await proxy.close()
        if metrics is not None:
            metrics.close()
        with contextlib.suppress(OSError):
            if proxy is not None:
                sock_path.unlink()
        shutil.rmtree(private, ignore_errors=True)
        if cpu_latency is not None:
            cpu_latency.close()
        lock.release()
