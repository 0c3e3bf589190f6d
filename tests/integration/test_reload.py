"""SIGHUP reloads that must apply whole or not at all, the -k profile's own
port, and the control socket across reloads; against the real PgBouncer/
PostgreSQL and the Patroni stand-in. (test_http.py has the reloads that add
and remove listeners.)"""

import json
import os
import signal
import socket
import subprocess
import urllib.request

import pytest

import procs
from agent_client import check, equals, wait_reply
from procs import ADDR, AGENT_PORT, poll_until

PORT_A = 5556         # a profile port of the running configuration
PORT_B = 5557         # a profile port only the failed reload asks for
HTTP_PORT = 8098
OTHER_ADDR = "127.0.0.22"


def bound():
    return 0.2 + 0.15 + 0.3


def conf(workdir, text, name="reload.conf"):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


BASE = ("[happac]\npatroni-host = %s\npg-is-ready-port = 6432\nlisten = %s\nport = %d\n"
        "interval = 200ms\ntimeout = 150ms\n" % (ADDR, ADDR, AGENT_PORT))


def reload(h, what="ok"):
    """SIGHUP, then wait for the next `reloaded:` or `reload failed` line."""
    ok, failed = h.log().count("reloaded:"), h.log().count("reload failed")
    h.proc.send_signal(signal.SIGHUP)
    poll_until(lambda: h.log().count("reloaded:") > ok or
               h.log().count("reload failed") > failed, 5, what="reload logged")
    lines = [l for l in h.log().splitlines() if "reloaded:" in l or "reload failed" in l]
    return lines[-1]


def status(addr=ADDR, port=HTTP_PORT):
    with urllib.request.urlopen("http://%s:%d/status" % (addr, port), timeout=5) as r:
        return json.loads(r.read())


def refused(port, addr=ADDR):
    try:
        socket.create_connection((addr, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def ctl(sock, *args):
    return subprocess.run([procs.happac_bin(), "ctl", "--socket", sock] + list(args),
                          capture_output=True, text=True, timeout=10)


def test_failed_reload_changes_nothing(happac, backends, workdir):
    """Issue #11 finding 1: a reload whose HTTP port cannot be bound, after
    its agent listeners could be, is not half applied."""
    standin = backends[1]
    standin.set("replica")
    running = (BASE + "patroni-healthcheck = replica\nprofile = replica2:%d\n"
               "http-listen = %s:%d\n\n[profile replica2]\nrule = replica\n"
               % (PORT_A, ADDR, HTTP_PORT))
    h = happac(args=["-c", conf(workdir, running)])
    wait_reply(PORT_A, equals("up\n"), 2 * bound())
    before = status()
    # The new side-port address is taken, so the reload must fail at the
    # HTTP side port, after its agent listeners were bound.
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind((OTHER_ADDR, HTTP_PORT))
    blocker.listen(1)
    try:
        conf(workdir, BASE + "patroni-healthcheck = replica\nprofile = primary:%d\n"
                             "http-listen = %s:%d\n" % (PORT_B, OTHER_ADDR, HTTP_PORT))
        line = reload(h)
        assert "reload failed" in line and "%s:%d" % (OTHER_ADDR, HTTP_PORT) in line, line
        # Nothing of the new configuration: the primary port never listens
        # (on a replica it would have said the old table's `up`) ...
        assert refused(PORT_B)
        # ... and all of the old one: its profile port answers its line.
        for _ in range(5):
            assert check(PORT_A)[0] == "up\n"
            assert check(AGENT_PORT)[0] == "up\n"
        after = status()
        assert [(p["name"], p["rule"]) for p in after["profiles"]] == \
            [(p["name"], p["rule"]) for p in before["profiles"]] == \
            [("replica", "replica"), ("replica2", "replica")]
        assert after["config"] == before["config"]
        assert "agent: listening on %s:%d" % (ADDR, PORT_B) not in h.log()
    finally:
        blocker.close()
    # The same reload once the address is free: applied whole.
    line = reload(h)
    assert "reloaded:" in line, line
    assert refused(PORT_A)
    assert check(PORT_B)[0].startswith("down")  # a primary port on a replica
    assert [p["name"] for p in status(OTHER_ADDR)["profiles"]] == ["replica", "primary"]
    assert refused(HTTP_PORT)


def test_failed_reload_keeps_control_socket(happac, backends, workdir):
    """A reload that fails after its new control socket was bound removes
    that socket and keeps serving the old one."""
    old_sock = os.path.join(workdir, "old.sock")
    new_sock = os.path.join(workdir, "new.sock")
    h = happac(args=["-c", conf(workdir, BASE + "control-socket = %s\n" % old_sock)])
    assert ctl(old_sock, "drain").returncode == 0
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind((OTHER_ADDR, AGENT_PORT))
    blocker.listen(1)
    try:
        conf(workdir, BASE + "listen = %s\ncontrol-socket = %s\n" % (OTHER_ADDR, new_sock))
        assert "reload failed" in reload(h)
    finally:
        blocker.close()
    assert not os.path.exists(new_sock)
    r = ctl(old_sock, "status")
    assert r.returncode == 0 and '"admin":"drain"' in r.stdout.replace(" ", ""), r.stdout
    assert check(AGENT_PORT)[0] == "up drain\n"


@pytest.mark.parametrize("how", ["command line", "config section"])
def test_k_profile_port_is_bound(happac, backends, workdir, how):
    """Issue #11 finding 2: a port given to the -k profile is one more
    listener answering it, and --check-config says so."""
    if how == "command line":
        args = ["-c", conf(workdir, BASE), "-k", "primary", "--profile", "primary:%d" % PORT_A]
    else:
        args = ["-c", conf(workdir, BASE + "\n[profile primary]\nrule = primary\nport = %d\n"
                           % PORT_A)]
    h = happac(args=args)
    assert check(PORT_A)[0] == "up\n"
    assert "agent: listening on %s:%d" % (ADDR, PORT_A) in h.log()
    backends[1].set("503")
    wait_reply(PORT_A, equals("down #patroni /primary: 503\n"), 2 * bound())
    r = subprocess.run([procs.happac_bin()] + args + ["--check-config"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert "#   %d answers primary\n#   %d answers primary\n" % (AGENT_PORT, PORT_A) in r.stdout, \
        r.stdout


def test_k_profile_port_moves_by_reload(happac, backends, workdir):
    """The -k profile's port follows a reload like any profile port."""
    path = conf(workdir, BASE + "\n[profile primary]\nrule = primary\nport = %d\n" % PORT_A)
    h = happac(args=["-c", path])
    assert check(PORT_A)[0] == "up\n"
    conf(workdir, BASE + "\n[profile primary]\nrule = primary\nport = %d\n" % PORT_B)
    assert "reloaded:" in reload(h)
    assert refused(PORT_A)
    assert check(PORT_B)[0] == "up\n"


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def test_reload_moves_only_the_state_file(happac, backends, workdir):
    """Issue #11 finding 8: the control socket stays, the override stays, and
    it is written to the new state file."""
    sock = os.path.join(workdir, "happac.sock")
    state1 = os.path.join(workdir, "one.state")
    state2 = os.path.join(workdir, "two.state")
    for p in (state1, state2):
        if os.path.exists(p):
            os.unlink(p)
    h = happac(args=["-c", conf(workdir, BASE + "control-socket = %s\nstate-file = %s\n"
                                % (sock, state1))])
    assert ctl(sock, "drain").returncode == 0
    assert check(AGENT_PORT)[0] == "up drain\n"
    conf(workdir, BASE + "control-socket = %s\nstate-file = %s\n" % (sock, state2))
    line = reload(h)
    assert "reloaded:" in line, line
    assert check(AGENT_PORT)[0] == "up drain\n"
    # The state file is written off the loop (ctl_writer.c): wait for it.
    poll_until(lambda: "admin = drain" in read(state2), 5, what="admin = drain in " + state2)
    r = ctl(sock, "status")
    assert r.returncode == 0 and state2 in r.stdout, r.stdout + r.stderr
    # changes go to the new file only
    assert ctl(sock, "maint").returncode == 0
    with open(state2) as f:
        assert "admin = maint" in f.read()
    with open(state1) as f:
        assert "admin = drain" in f.read()
    assert check(AGENT_PORT)[0] == "up maint\n"


def test_reload_moves_the_control_socket(happac, backends, workdir):
    """Issue #11 finding 9: without a state file, moving the control socket
    keeps the override in force (HAProxy must not hear `ready`)."""
    sock1 = os.path.join(workdir, "one.sock")
    sock2 = os.path.join(workdir, "two.sock")
    h = happac(args=["-c", conf(workdir, BASE + "control-socket = %s\n" % sock1)])
    assert ctl(sock1, "drain").returncode == 0
    assert check(AGENT_PORT)[0] == "up drain\n"
    conf(workdir, BASE + "control-socket = %s\n" % sock2)
    line = reload(h)
    assert "reloaded:" in line, line
    for _ in range(5):
        assert check(AGENT_PORT)[0] == "up drain\n"
    assert not os.path.exists(sock1)
    r = ctl(sock2, "status")
    assert r.returncode == 0 and '"admin":"drain"' in r.stdout.replace(" ", ""), r.stdout
    assert ctl(sock2, "ready").returncode == 0
    assert check(AGENT_PORT)[0] == "up ready\n"
