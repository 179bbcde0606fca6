"""The exception family of the preempt runtime."""


class PreemptError(Exception):
    """Base of every error raised by preempt."""


class XQueueClosedError(PreemptError):
    """Submit or change to an XQueue after close()."""


class XQueueConfigError(PreemptError, ValueError):
    """A bad XQueue parameter (level, threshold, batch size); the message names the range."""


class XQueueTimeout(PreemptError, TimeoutError):
    """A wait or synchronize that did not finish within its timeout."""


class HwQueueFailed(PreemptError):
    """The hardware queue refused a launch; the XQueue stops launching."""


class ConfigError(PreemptError, ValueError):
    """A bad XSCHED_* environment variable; the message names it, its value and the range."""
