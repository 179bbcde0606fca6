"""Requests (immutable, as submitted) and sequences (their progress, owned by the scheduler)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from llmserve.errors import InvalidRequestError


@dataclass(frozen=True)
class Request:
    """One generation request: `prompt_tokens` in, exactly `max_tokens` out.

    `priority`: bigger is more urgent (the sign convention of XSched hints).
    `ttft_slo_ms`: time-to-first-token target, counted from `arrival_s`; None for none.
    """

    id: str
    arrival_s: float
    prompt_tokens: int
    max_tokens: int
    priority: int = 0
    ttft_slo_ms: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise InvalidRequestError(f"request id must be a non-empty string, got {self.id!r}")
        if (
            not _is_number(self.arrival_s)
            or not math.isfinite(self.arrival_s)
            or self.arrival_s < 0
        ):
            raise InvalidRequestError(
                f"request {self.id!r}: arrival_s must be a finite number >= 0, "
                f"got {self.arrival_s!r}"
            )
        for name in ("prompt_tokens", "max_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidRequestError(
                    f"request {self.id!r}: {name} must be an integer >= 1, got {value!r}"
                )
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise InvalidRequestError(
                f"request {self.id!r}: priority must be an integer, got {self.priority!r}"
            )
        slo = self.ttft_slo_ms
        if slo is not None and (not _is_number(slo) or not math.isfinite(slo) or slo <= 0):
            raise InvalidRequestError(
                f"request {self.id!r}: ttft_slo_ms must be a number > 0, got {slo!r}"
            )

    @property
    def ttft_deadline_s(self) -> float:
        """Absolute time by which the first token is due; +inf without an SLO."""
        if self.ttft_slo_ms is None:
            return math.inf
        return self.arrival_s + self.ttft_slo_ms / 1000.0


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class SequenceState(enum.Enum):
    """Where a sequence is in its life. FINISHED and REJECTED are final."""

    ARRIVED = "arrived"  # handed to the scheduler, admission not yet decided
    WAITING = "waiting"  # admitted, no KV on the GPU (new, or preempted by recompute)
    RUNNING = "running"  # KV on the GPU, in the running set
    SWAPPED = "swapped"  # preempted by swap: KV in the host pool
    FINISHED = "finished"
    REJECTED = "rejected"


@dataclass(slots=True, eq=False)
class Sequence:
    """The progress of one request. Mutated only by the Scheduler; policies read it.

    Token accounting follows vLLM v1: a sequence holds `num_tokens` = prompt + generated
    tokens, of which the KV of `num_computed` is in the cache. A step computes the rest
    (the whole prompt, a chunk of it, or the one newest token) and, once all are computed,
    samples one more token. Preemption by recompute resets `num_computed` to 0 and keeps
    the generated tokens, which are then recomputed together with the prompt.
    """

    request: Request
    index: int  # order of arrival at the scheduler; the last tie-breaker everywhere
    state: SequenceState = SequenceState.ARRIVED
    num_computed: int = 0
    output_token_ids: list[int] = field(default_factory=list)
    first_scheduled_s: float | None = None
    first_token_s: float | None = None
    finish_s: float | None = None
    served_steps: int = 0  # steps in which it was in the batch (CFS's virtual runtime)
    run_tokens: int = 0  # tokens sampled since it last entered the running set
    num_swaps: int = 0
    num_recomputes: int = 0
    rejection: str | None = None

    @property
    def id(self) -> str:
        return self.request.id

    @property
    def num_generated(self) -> int:
        return len(self.output_token_ids)

    @property
    def num_tokens(self) -> int:
        return self.request.prompt_tokens + len(self.output_token_ids)

    @property
    def num_uncomputed(self) -> int:
        return self.request.prompt_tokens + len(self.output_token_ids) - self.num_computed

    @property
    def remaining_outputs(self) -> int:
        return self.request.max_tokens - len(self.output_token_ids)

    @property
    def num_preemptions(self) -> int:
        return self.num_swaps + self.num_recomputes

    @property
    def max_kv_tokens(self) -> int:
        """KV slots it holds at its largest: the last sampled token is never fed back."""
        return self.request.prompt_tokens + self.request.max_tokens - 1

    @property
    def is_final(self) -> bool:
        return self.state in (SequenceState.FINISHED, SequenceState.REJECTED)
