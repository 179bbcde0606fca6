"""LAX: lax priority until the laxity since ready runs out, critical priority after."""

from xschedd.policy.hints import PRIORITY_NEVER, LaxityHint, PriorityHint
from xschedd.policy.lax import Laxity

from .scenario import MS, resumed, status, timer, xq


def lax(*hints: LaxityHint) -> Laxity:
    policy = Laxity()
    for hint in hints:
        policy.on_hint(hint)
    return policy


# q1 can wait 5 ms at priority -10, then becomes critical at priority 10; q2 has no hint (0).
SLACK = LaxityHint(1, laxity_us=5000, lax_priority=-10, crit_priority=10)


def test_a_queue_with_slack_yields_to_default_work():
    ops = lax(SLACK).schedule(status(1 * MS, xq(1, since=0.0), xq(2, since=0.0)))
    assert resumed(ops) == {2}


def test_a_timer_is_set_for_when_the_laxity_runs_out():
    ops = lax(SLACK).schedule(status(1 * MS, xq(1, since=0.0), xq(2, since=0.0)))
    assert timer(ops) == 5 * MS


def test_once_its_laxity_has_run_out_the_queue_runs_at_critical_priority():
    ops = lax(SLACK).schedule(status(5 * MS, xq(1, since=0.0), xq(2, since=0.0)))
    assert resumed(ops) == {1}
    assert timer(ops) is None


def test_laxity_counts_from_when_the_queue_became_ready():
    ops = lax(SLACK).schedule(status(6 * MS, xq(1, since=2 * MS), xq(2, since=0.0)))
    assert resumed(ops) == {2}
    assert timer(ops) == 7 * MS


def test_the_timer_is_the_earliest_expiry_still_ahead():
    other = LaxityHint(3, laxity_us=3000, lax_priority=-10, crit_priority=10)
    ops = lax(SLACK, other).schedule(
        status(1 * MS, xq(1, since=0.0), xq(2, since=0.0), xq(3, since=0.0))
    )
    assert timer(ops) == 3 * MS


def test_an_idle_queue_counts_at_its_lax_priority_never_its_critical_one():
    ops = lax(SLACK).schedule(status(10 * MS, xq(1, ready=False), xq(2)))
    assert resumed(ops) == {2}


def test_a_never_priority_queue_stays_suspended():
    never = LaxityHint(1, laxity_us=1000, lax_priority=PRIORITY_NEVER, crit_priority=PRIORITY_NEVER)
    ops = lax(never).schedule(status(5 * MS, xq(1, since=0.0)))
    assert resumed(ops) == set()


def test_priority_hints_are_not_lax_hints():
    policy = lax()
    policy.on_hint(PriorityHint(1, 100))
    assert resumed(policy.schedule(status(0.0, xq(1), xq(2)))) == {1, 2}


def test_no_timer_for_an_expiry_that_changes_nothing():
    flat = LaxityHint(1, laxity_us=5000, lax_priority=3, crit_priority=3)
    assert timer(lax(flat).schedule(status(1 * MS, xq(1, since=0.0)))) is None
