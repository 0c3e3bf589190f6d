"""The operator override's state file across restarts (issue 11 #3, #13),
against the real PgBouncer/PostgreSQL and the Patroni stand-in: `ready` is
said once after a drain/maint, not after every restart; a state file with a
bad field never silently puts a node under maintenance back into service."""

import os
import subprocess
import time

import procs
from agent_client import check, equals, starts, wait_reply
from procs import AGENT_PORT, poll_until


def read_state(path):
    with open(path) as f:
        return dict(line.split(" = ", 1) for line in f.read().splitlines()
                    if line and not line.startswith("#"))


def paths(workdir, name):
    sock = os.path.join(workdir, name + ".sock")
    state = os.path.join(workdir, name + ".state")
    if os.path.exists(state):
        os.unlink(state)
    return sock, state


def ctl(sock, *cmd):
    r = subprocess.run([procs.happac_bin(), "ctl", "--socket", sock] + list(cmd),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def lines_for(seconds):
    """Every distinct agent line over seconds."""
    seen = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        line = check(AGENT_PORT)[0]
        if line not in seen:
            seen.append(line)
        time.sleep(0.05)
    return seen


def test_ready_once_then_never_after_a_restart(happac, backends, workdir):
    sock, state = paths(workdir, "once")
    args = ("--control-socket", sock, "--state-file", state, "--ready-window", "1s")
    h = happac(*args)
    assert ctl(sock, "drain") == "ok drain\n"
    assert check(AGENT_PORT)[0] == "up drain\n"
    assert ctl(sock, "ready") == "ok ready\n"
    assert check(AGENT_PORT)[0] == "up ready\n"
    # the window passes: plain up, and the state file owes nothing any more
    wait_reply(AGENT_PORT, equals("up\n"), 3)
    poll_until(lambda: read_state(state)["prev"] == "ready", 3,
               what="prev = ready in the state file")
    assert read_state(state)["admin"] == "ready"
    assert "said ready for the ready window after drain" in h.log()
    h.stop()
    # a restart long after: no `ready` (it would undo an operator's manual
    # MAINT/DRAIN in HAProxy), not even for a moment
    happac(*args)
    assert lines_for(1.5) == ["up\n"]


def test_restart_inside_the_window_says_ready_again(happac, backends, workdir):
    sock, state = paths(workdir, "inside")
    args = ("--control-socket", sock, "--state-file", state, "--ready-window", "1s")
    h = happac(*args)
    assert ctl(sock, "maint") == "ok maint\n"
    assert ctl(sock, "ready") == "ok ready\n"
    assert check(AGENT_PORT)[0] == "up ready\n"
    h.stop()  # inside the window: HAProxy may not have heard `ready` yet
    assert read_state(state)["prev"] == "maint"
    h = happac(*args)
    assert check(AGENT_PORT)[0] == "up ready\n"
    wait_reply(AGENT_PORT, equals("up\n"), 3)
    poll_until(lambda: read_state(state)["prev"] == "ready", 3,
               what="prev = ready in the state file")
    h.stop()
    happac(*args)
    assert lines_for(1.5) == ["up\n"]


def test_bad_auxiliary_field_keeps_maintenance(happac, backends, workdir):
    sock, state = paths(workdir, "aux")
    with open(state, "w") as f:
        f.write("admin = maint\nprev = ready\nuid = 0\nset_at = yesterday\n")
    h = happac("--control-socket", sock, "--state-file", state)
    assert check(AGENT_PORT)[0] == "up maint\n"
    assert ("override: keeping admin = maint from the state file, without its bad "
            "fields: %s:4: bad set_at 'yesterday'" % state) in h.log()
    assert '"admin":"maint"' in ctl(sock, "status")


def test_bad_admin_refuses_to_start(backends, workdir):
    sock, state = paths(workdir, "refuse")
    with open(state, "w") as f:
        f.write("# by hand\nadmin = maintenance\nuid = 0\n")
    rc, _, err, _ = procs.run_happac(
        ["-h", procs.ADDR, "-r", str(procs.PGB_PORT), "-o", str(procs.PATRONI_PORT),
         "-p", str(AGENT_PORT), "--listen", procs.ADDR, "--control-socket", sock,
         "--state-file", state], timeout=10)
    assert rc == 1, err
    assert ("%s:2: bad admin 'maintenance'" % state) in err
    assert "refusing to start" in err
    assert not os.path.exists(sock)
    assert procs.port_free(procs.ADDR, AGENT_PORT)
