"""WRR, weighted round robin: ready XQueues take turns; a turn lasts timeslice x share."""

from __future__ import annotations

from xschedd.policy.hints import TIMESLICE_MIN_US, UTILIZATION_MAX
from xschedd.policy.timeslice import TimeSharing


class WeightedRoundRobin(TimeSharing):
    """Round robin in XQueue-id order; the weight of a queue is its utilization hint.

    A turn lasts `timeslice * utilization / 100` (at least the minimum time slice), so
    with equal weights every ready queue gets the same share of the device.
    """

    name = "WRR"

    def _pick(self, candidates: list[int], previous: int | None) -> int:
        if previous is None:
            return candidates[0]
        after = [xq for xq in candidates if xq > previous]
        return after[0] if after else candidates[0]

    def _slice_s(self, xqueue_id: int) -> float:
        share = max(self.utilization(xqueue_id), 1) / UTILIZATION_MAX
        return max(self._timeslice_s * share, TIMESLICE_MIN_US / 1e6)
