"""The exception family of llmserve: every error it raises derives from LLMServeError."""

from __future__ import annotations


class LLMServeError(Exception):
    """Base of every error raised by llmserve."""


class ConfigError(LLMServeError, ValueError):
    """A configuration value outside its allowed range; the message names value and range."""


class UnknownPolicyError(ConfigError):
    """A request-policy name that is not one of the known policies."""


class SchedulerError(LLMServeError):
    """The scheduler loop was used out of contract (unknown request, duplicate id, ...)."""


class SimulationError(LLMServeError):
    """The simulator cannot make progress or was given inconsistent input."""


class RequestFileError(LLMServeError, ValueError):
    """One or more bad lines in a requests file; `problems` holds (line number, message)."""

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [
            f"{source}:{lineno}: {msg}" if lineno > 0 else f"{source}: {msg}"
            for lineno, msg in self.problems
        ]
        super().__init__("\n".join(lines) if lines else f"{source}: bad requests file")


class InvalidRequestError(LLMServeError, ValueError):
    """A request whose fields are out of range (negative tokens, bad SLO, empty id)."""
