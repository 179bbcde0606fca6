"""Peer credentials decide: another uid may look, but not steer someone else's queues."""

from __future__ import annotations

import os

import pytest

from tests.daemon.conftest import wait_for
from xschedd.auth import Authorizer, Peer, PeerTable
from xschedd.errors import PermissionDenied

NOBODY = 65534


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
def test_another_uid_cannot_hint_configure_or_change_policy(make_env, short_dir) -> None:
    os.chmod(short_dir, 0o711)  # let the other user reach the socket (its group may connect)
    env = make_env("--socket-group", str(NOBODY))
    w = env.workload("name=q,commands=2,command_us=200", duration_s=8)
    xq = hex(wait_for(lambda: env.daemon.xqueues(), 10)[0].info.xqueue_id)
    listed = env.ctl("list", user=NOBODY)
    assert listed.returncode == 0, listed.stderr  # reading is for everyone who may connect
    for args in (
        ("hint", xq, "--priority", "5"),
        ("hint", "--pid", str(w.pid), "--priority", "5"),
        ("config", xq, "--threshold", "4"),
        ("suspend", xq),
        ("policy", "--set", "UP"),
        ("hint", "--timeslice", "1000"),
    ):
        r = env.ctl(*args, user=NOBODY)
        assert r.returncode == 4, (args, r.stdout, r.stderr)
        assert "PERMISSION_DENIED" in r.stderr
    assert env.ctl("hint", xq, "--priority", "5").returncode == 0  # the owner (root) may
    assert "refused" in env.daemon.log.read_text()
    w.proc.kill()


def _authorizer() -> Authorizer:
    return Authorizer(PeerTable(), admin_group=4242)


def test_users_may_touch_only_their_own_queues() -> None:
    auth = _authorizer()
    alice = Peer("unix", "a", uid=1001, gid=1001, pid=10, admin=False)
    auth.require_owner(alice, 1001, "hint")
    with pytest.raises(PermissionDenied, match="uid 1002"):
        auth.require_owner(alice, 1002, "hint")
    with pytest.raises(PermissionDenied, match="admin group"):
        auth.require_admin(alice, "changing the policy")


def test_root_the_daemon_owner_and_the_admin_group_are_admins() -> None:
    auth = _authorizer()
    assert auth._is_admin(0, 0)
    assert auth._is_admin(os.geteuid(), None)
    assert auth._is_admin(31337, 4242)  # primary group is the admin group
    assert not auth._is_admin(31337, 31337) or os.geteuid() == 31337


def test_tcp_peers_are_refused_unless_loopback_or_remote_with_the_token() -> None:
    auth = Authorizer(PeerTable(), token="s3cret", allow_remote=False, tcp_port=1)
    with pytest.raises(PermissionDenied, match="allow-remote"):
        auth.identify("ipv4:10.1.2.3:5555")
    auth = Authorizer(PeerTable(), token="s3cret", allow_remote=True, tcp_port=1)
    with pytest.raises(PermissionDenied, match="token"):
        auth.identify("ipv4:10.1.2.3:5555", (("authorization", "Bearer wrong"),))
    peer = auth.identify("ipv4:10.1.2.3:5555", (("authorization", "Bearer s3cret"),))
    assert peer.admin and peer.uid is None
    with pytest.raises(PermissionDenied):
        auth.identify("unix-abstract:not-relayed")
