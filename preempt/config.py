"""Configuration by environment, with XSched's names, ranges and defaults (one home for all)."""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

from preempt.errors import ConfigError
from preempt.xqueue import DEFAULT_BATCH_SIZE, DEFAULT_LEVEL, DEFAULT_THRESHOLD, IDLE_NEWS_DELAY_S
from xschedd.policy import PolicyError, policy_names
from xschedd.policy import hints as H

SCHEDULER = "XSCHED_SCHEDULER"
POLICY = "XSCHED_POLICY"
AUTO_XQUEUE = "XSCHED_AUTO_XQUEUE"
AUTO_LEVEL = "XSCHED_AUTO_XQUEUE_LEVEL"
AUTO_THRESHOLD = "XSCHED_AUTO_XQUEUE_THRESHOLD"
AUTO_BATCH_SIZE = "XSCHED_AUTO_XQUEUE_BATCH_SIZE"
AUTO_PRIORITY = "XSCHED_AUTO_XQUEUE_PRIORITY"
AUTO_UTILIZATION = "XSCHED_AUTO_XQUEUE_UTILIZATION"
AUTO_TIMESLICE = "XSCHED_AUTO_XQUEUE_TIMESLICE"
AUTO_DEADLINE = "XSCHED_AUTO_XQUEUE_DEADLINE"
AUTO_KDEADLINE = "XSCHED_AUTO_XQUEUE_KDEADLINE"
AUTO_LAXITY = "XSCHED_AUTO_XQUEUE_LAXITY"
# ours: how long a queue that a waiter left idle in the driver stays READY to schedulers
IDLE_DELAY = "XSCHED_IDLE_DELAY_US"
IDLE_DELAY_MAX_US = 1_000_000

# How a GLB process reaches xschedd (read by preempt.agent).
SOCKET = "XSCHED_SOCKET"  # the daemon's Unix socket (default: hal.paths.daemon_socket())
SERVER = "XSCHED_SERVER"  # HOST:PORT: use TCP instead
TOKEN = "XSCHED_TOKEN"  # token for a daemon started with --allow-remote
LEASE = "XSCHED_LEASE_S"  # resume every XQueue after this much silence from the daemon

ENV_NAMES = (
    SCHEDULER, POLICY, AUTO_XQUEUE, AUTO_LEVEL, AUTO_THRESHOLD, AUTO_BATCH_SIZE, AUTO_PRIORITY,
    AUTO_UTILIZATION, AUTO_TIMESLICE, AUTO_DEADLINE, AUTO_KDEADLINE, AUTO_LAXITY, IDLE_DELAY,
)  # fmt: skip


class SchedulerKind(enum.Enum):
    APP = "APP"  # the application manages its XQueues itself (XSched's default)
    LCL = "LCL"  # a local scheduler runs a policy in this process
    GLB = "GLB"  # the global scheduler in xschedd


@dataclass(frozen=True)
class XQueueDefaults:
    """Parameters and hints a new XQueue gets unless the application says otherwise."""

    level: int = int(DEFAULT_LEVEL)
    threshold: int = DEFAULT_THRESHOLD
    batch_size: int = DEFAULT_BATCH_SIZE
    priority: int = H.PRIORITY_DEFAULT
    utilization: int = H.UTILIZATION_DEFAULT
    timeslice_us: int = H.TIMESLICE_DEFAULT_US
    deadline_us: int | None = None
    kdeadline: int | None = None
    laxity_us: int | None = None
    idle_delay_us: int = round(IDLE_NEWS_DELAY_S * 1e6)  # XQueue.idle_news_delay_s


@dataclass(frozen=True)
class Config:
    scheduler: SchedulerKind = SchedulerKind.APP
    policy: str | None = None
    auto_xqueue: bool = False
    defaults: XQueueDefaults = XQueueDefaults()


def _int(
    env: Mapping[str, str], name: str, what: str, low: int, high: int, high_text: str = ""
) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r}: expected an integer in [{low}, {high_text or high}]"
        ) from None
    try:
        return H.check_range(what, value, low, high)
    except H.HintError:
        raise ConfigError(f"{name}={raw!r}: {what} must be in [{low}, {high_text or high}]") from None


def _choice(env: Mapping[str, str], name: str, choices: list[str]) -> str | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip().upper()
    if value not in choices:
        raise ConfigError(f"{name}={raw!r}: expected one of {', '.join(choices)}")
    return value


def _switch(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return False
    value = raw.strip().lower()
    if value in ("on", "1", "true", "yes"):
        return True
    if value in ("off", "0", "false", "no"):
        return False
    raise ConfigError(f"{name}={raw!r}: expected ON or OFF")


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Read every XSCHED_* variable; a bad value raises ConfigError naming it and the range."""
    env = os.environ if env is None else env
    max64 = (H.INT64_MAX, "2**63-1")
    threshold = _int(env, AUTO_THRESHOLD, "threshold", 1, *max64)
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    batch = _int(env, AUTO_BATCH_SIZE, "batch size", 1, threshold, f"threshold={threshold}")
    get = functools.partial(_int, env)
    defaults = XQueueDefaults(
        level=_or(get(AUTO_LEVEL, "level", 1, 3), int(DEFAULT_LEVEL)),
        threshold=threshold,
        batch_size=_or(batch, min(DEFAULT_BATCH_SIZE, threshold)),
        priority=_or(get(AUTO_PRIORITY, "priority", H.PRIORITY_NEVER, H.PRIORITY_MAX), 0),
        utilization=_or(
            get(AUTO_UTILIZATION, "utilization", H.UTILIZATION_MIN, H.UTILIZATION_MAX),
            H.UTILIZATION_DEFAULT,
        ),
        timeslice_us=_or(
            get(AUTO_TIMESLICE, "timeslice", H.TIMESLICE_MIN_US, H.TIMESLICE_MAX_US),
            H.TIMESLICE_DEFAULT_US,
        ),
        deadline_us=get(AUTO_DEADLINE, "deadline", 1, *max64),
        kdeadline=get(AUTO_KDEADLINE, "k", 1, *max64),
        laxity_us=get(AUTO_LAXITY, "laxity", 1, *max64),
        idle_delay_us=_or(get(IDLE_DELAY, "idle delay", 0, IDLE_DELAY_MAX_US), XQueueDefaults.idle_delay_us),
    )
    kinds = [k.value for k in SchedulerKind]
    scheduler = SchedulerKind(_choice(env, SCHEDULER, kinds) or SchedulerKind.APP.value)
    policy = _choice(env, POLICY, policy_names())
    if policy is not None:  # as in XSched: a policy means a local scheduler
        scheduler = SchedulerKind.LCL
    elif scheduler is SchedulerKind.LCL:
        policy = "HPF"
    return Config(scheduler, policy, _switch(env, AUTO_XQUEUE), defaults)


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


__all__ = ["Config", "ENV_NAMES", "PolicyError", "SchedulerKind", "XQueueDefaults", "load_config"]
