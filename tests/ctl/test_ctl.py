"""The operator override control socket (issue 6, part 3) against a real
server: ctl_new() on a libevent loop (tests/ctl/ctl_harness.c) and the
`happac ctl` client (ctl_client_main()).

Protocol: one request line per connection, one reply line, close.
"""

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # any import mode

from ctl_util import DEADLINE_S, LINE_MAX, MAX_CONNS, request  # noqa: E402

UID = os.getuid()


def status(sock):
    reply = request(sock, "status\n")
    assert reply.endswith("\n") and reply.count("\n") == 1, repr(reply)
    return json.loads(reply)


def read_state(path):
    with open(path) as f:
        return dict(line.split(" = ", 1) for line in f.read().splitlines()
                    if line and not line.startswith("#"))


def wait_state(path, key, value, timeout=5.0):
    """The state file is written by a thread after the change: it catches up."""
    deadline = time.monotonic() + timeout
    while read_state(path).get(key) != value:
        assert time.monotonic() < deadline, read_state(path)
        time.sleep(0.02)


def stale_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # the file stays: nobody listens on it


# ---- requests and replies

def test_drain_maint_ready_status(start):
    srv = start()
    st = status(srv.sock)
    assert st["admin"] == "ready" and st["since"] is None and st["ramp_weight"] is None
    assert st["state_file"] == srv.state and st["saved"] is True

    before = time.time()
    assert request(srv.sock, "drain\n") == "ok drain\n"
    assert srv.change() == {"admin": "drain", "prev": "ready", "uid": str(UID),
                            "ramp_ms": "0", "weight": "-1"}
    st = status(srv.sock)
    assert st["admin"] == "drain" and st["prev"] == "ready" and st["uid"] == UID
    assert before - 1 <= st["since"] <= time.time() + 1

    assert request(srv.sock, "maint\r\n") == "ok maint\n"
    assert srv.change()["admin"] == "maint"
    assert status(srv.sock)["prev"] == "drain"

    assert request(srv.sock, "ready\n") == "ok ready\n"
    assert srv.change() == {"admin": "ready", "prev": "maint", "uid": str(UID),
                            "ramp_ms": "0", "weight": "-1"}
    st = status(srv.sock)
    assert st["admin"] == "ready" and st["prev"] == "maint" and st["ramp_ms"] == 0


def test_repeated_command_is_not_a_change(start):
    srv = start()
    assert request(srv.sock, "ready\n") == "ok ready\n"  # nothing to clear
    assert request(srv.sock, "drain\n") == "ok drain\n"
    srv.change()
    since = status(srv.sock)["since"]
    assert request(srv.sock, "drain\n") == "ok drain\n"
    srv.no_change()
    assert status(srv.sock)["since"] == since
    srv.wait_log("override: drain requested by uid %d" % UID)


def test_request_without_newline_at_eof(start):
    """`printf drain | socat - UNIX:...`: end of input ends the line."""
    srv = start()
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect(srv.sock)
    c.sendall(b"drain")
    c.shutdown(socket.SHUT_WR)
    assert c.recv(100) == b"ok drain\n"
    c.close()
    assert srv.change()["admin"] == "drain"


def test_every_change_logged_with_uid(start):
    srv = start()
    for cmd in ("drain", "maint", "ready --ramp 60s", "ready"):
        assert request(srv.sock, cmd + "\n").startswith("ok ")
        srv.change()
    log = srv.log()
    assert "override: drain set by uid %d (pid " % UID in log
    assert "override: maint set by uid %d" % UID in log
    assert "override: ready with a 60.0s weight ramp set by uid %d" % UID in log
    assert "was maint)" in log
    assert "override: ready set by uid %d" % UID in log
    assert "was ready (ramping))" in log


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_uid_of_another_user(start, sockdir):
    """SO_PEERCRED names the real requester; mode 0660 keeps others out."""
    srv = start()
    code = ("import socket,sys; c=socket.socket(socket.AF_UNIX); c.settimeout(5)\n"
            "try:\n c.connect(sys.argv[1])\n"
            "except PermissionError: print('EACCES'); sys.exit()\n"
            "c.sendall(b'drain\\n'); print(c.recv(100).decode().strip())")
    # nobody is neither the owner nor in the socket's group: refused.
    r = subprocess.run(["/usr/bin/python3", "-c", code, srv.sock], user=65534, group=65534,
                       capture_output=True, text=True, timeout=10)
    assert r.stdout.strip() == "EACCES", r.stderr
    # Put nobody's group on the socket: now it may, and the log names uid 65534.
    os.chown(srv.sock, -1, 65534)
    r = subprocess.run(["/usr/bin/python3", "-c", code, srv.sock], user=65534, group=65534,
                       capture_output=True, text=True, timeout=10)
    assert r.stdout.strip() == "ok drain", r.stderr
    assert srv.change()["uid"] == "65534"
    srv.wait_log("override: drain set by uid 65534")
    assert status(srv.sock)["uid"] == 65534


@pytest.mark.parametrize("line, needle", [
    (b"\n", "error empty request"),
    (b"bogus\n", "error unknown command 'bogus'"),
    (b"DRAIN\n", "error unknown command 'DRAIN'"),
    (b"up\n", "error unknown command 'up'"),
    (b"drain now\n", "error 'drain' takes no arguments"),
    (b"status please\n", "error 'status' takes no arguments"),
    (b"ready --ramp\n", "error --ramp needs a duration"),
    (b"ready --ramp soon\n", "error --ramp: invalid duration 'soon'"),
    (b"ready --ramp 0\n", "error --ramp: '0' is out of range"),
    (b"ready --ramp 25h\n", "error --ramp: invalid duration '25h'"),
    (b"ready --ramp 1441m\n", "error --ramp: '1441m' is out of range"),
    (b"ready --ramp 1s --ramp 2s\n", "error --ramp given twice"),
    (b"ready --fast\n", "error ready: unknown argument '--fast'"),
    (b"dra\x00in\n", "error request contains a byte that is not printable ASCII (0x00)"),
    (b"\xff\xfe\n", "error request contains a byte that is not printable ASCII (0xff)"),
])
def test_bad_requests(start, line, needle):
    srv = start()
    assert request(srv.sock, "drain\n") == "ok drain\n"
    srv.change()
    state = open(srv.state).read()
    reply = request(srv.sock, line)
    assert reply.startswith(needle), reply
    assert reply.endswith("\n") and reply.count("\n") == 1
    srv.no_change()
    assert open(srv.state).read() == state  # nothing happened
    assert status(srv.sock)["admin"] == "drain"


def test_only_the_first_line_counts(start):
    srv = start()
    assert request(srv.sock, "status\nmaint\n").startswith("{")
    srv.no_change()
    assert status(srv.sock)["admin"] == "ready"


def test_oversized_line(start):
    srv = start()
    # The longest line that fits is served.
    pad = "ready --ramp " + "0" * (LINE_MAX - 1 - len("ready --ramp ") - 3) + "60s"
    assert len(pad) == LINE_MAX - 1
    assert request(srv.sock, pad + "\n") == "ok ready\n"
    srv.change()
    # One byte more, then a flood: refused at once, no change, still serving.
    for blob in (b"x" * LINE_MAX, b"drain" + b" " * 100000 + b"\n"):
        t0 = time.monotonic()
        reply = request(srv.sock, blob)
        assert reply == "error request too long (max %d bytes)\n" % (LINE_MAX - 1)
        assert time.monotonic() - t0 < 1.0
    srv.no_change()
    assert status(srv.sock)["admin"] == "ready"


# ---- deadline, concurrency, the loop never blocks

def test_silent_client_gets_deadline(start):
    srv = start()
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.settimeout(10)
    silent.connect(srv.sock)
    half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    half.settimeout(10)
    half.connect(srv.sock)
    half.sendall(b"dra")  # part of a line, then nothing
    t0 = time.monotonic()
    # Meanwhile the loop serves everybody else at once.
    assert status(srv.sock)["admin"] == "ready"
    assert request(srv.sock, "drain\n") == "ok drain\n"
    assert time.monotonic() - t0 < 0.5
    for c in (silent, half):
        reply = c.recv(200)
        waited = time.monotonic() - t0
        assert reply == b"error timeout: no complete request within %dms\n" % int(DEADLINE_S * 1000)
        assert DEADLINE_S - 0.3 < waited < DEADLINE_S + 1.0, waited
        assert c.recv(200) == b""  # closed
        c.close()
    assert srv.change()["admin"] == "drain"
    srv.no_change()  # the partial "dra" was never taken as a request


def test_connection_cap(start, client):
    srv = start()
    held = []
    for _ in range(MAX_CONNS):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(10)
        c.connect(srv.sock)
        held.append(c)
    # Accepted in order: everything past the cap is told so, not queued.
    reply = request(srv.sock, "status\n")
    assert reply == "error busy: too many control connections, try again\n"
    r = client("--socket", srv.sock, "drain")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.startswith("error busy")
    srv.wait_log("control: %d connections open, refusing more" % MAX_CONNS)
    # A slot frees as soon as a held client goes away.
    held.pop().close()
    deadline = time.monotonic() + 2
    while request(srv.sock, "status\n").startswith("error busy"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for c in held:
        c.close()
    time.sleep(0.2)
    assert client("--socket", srv.sock, "drain").returncode == 0
    assert srv.change()["admin"] == "drain"


def test_many_concurrent_clients(start):
    srv = start()
    replies = []
    lock = threading.Lock()

    def one(i):
        r = request(srv.sock, ("drain\n", "ready\n", "status\n")[i % 3], timeout=10)
        with lock:
            replies.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(150)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert len(replies) == 150
    assert time.monotonic() - t0 < 10
    for r in replies:
        assert r.endswith("\n") and r.count("\n") == 1, repr(r)
        assert (r in ("ok drain\n", "ok ready\n") or r.startswith("{")
                or r.startswith("error busy")), r
    assert sum(not r.startswith("error") for r in replies) >= MAX_CONNS
    assert status(srv.sock)["admin"] in ("drain", "ready")  # still serving


# ---- persistence

def test_persists_across_restart(start):
    srv = start()
    assert request(srv.sock, "drain\n") == "ok drain\n"
    srv.change()
    before = status(srv.sock)
    assert read_state(srv.state)["admin"] == "drain"
    assert not os.path.exists(srv.state + ".tmp")
    srv.stop()
    assert not os.path.exists(srv.sock)  # ctl_free unlinks it

    srv = start()
    srv.wait_log("override: restored drain from %s (set by uid %d" % (srv.state, UID))
    after = status(srv.sock)
    assert after["admin"] == "drain" and after["uid"] == UID
    assert after["since"] == before["since"]

    assert request(srv.sock, "maint\n") == "ok maint\n"
    srv.change()
    srv.stop()
    srv = start()
    assert status(srv.sock)["admin"] == "maint"

    assert request(srv.sock, "ready\n") == "ok ready\n"
    srv.change()
    assert read_state(srv.state)["admin"] == "ready"
    srv.stop()
    srv = start()
    st = status(srv.sock)
    # prev survives too: the daemon can still tell HAProxy `ready` once.
    assert st["admin"] == "ready" and st["prev"] == "maint"


def test_no_state_file(start):
    srv = start(state=None)
    assert request(srv.sock, "drain\n") == "ok drain\n"
    srv.change()
    st = status(srv.sock)
    assert st["state_file"] is None and st["saved"] is False
    srv.stop()
    srv = start(state=None)
    assert status(srv.sock)["admin"] == "ready"


def test_state_file_bad_field_keeps_override(start, sockdir):
    """Issue 11 #13: one bad auxiliary field costs only that field."""
    state = os.path.join(sockdir, "override.state")
    with open(state, "w") as f:
        f.write("admin = maint\nuid = zero\nset_at = soon\n")
    srv = start()
    srv.wait_log("override: keeping admin = maint from the state file, without its "
                 "bad fields: %s:2: bad uid 'zero' (who set it is unknown); "
                 "%s:3: bad set_at 'soon' (when it was set is unknown)" % (state, state))
    srv.wait_log("override: restored maint from %s (set by an unknown uid at an "
                 "unknown time)" % state)
    st = status(srv.sock)
    assert st["admin"] == "maint" and st["since"] is None
    assert st["saved"] is False  # the file is not what is in force
    # The next change replaces it with a good one.
    assert request(srv.sock, "drain\n") == "ok drain\n"
    srv.change()
    assert read_state(state)["admin"] == "drain"
    srv.stop()
    srv = start()
    assert status(srv.sock)["admin"] == "drain"
    assert "bad fields" not in srv.log()


def test_state_file_bad_admin_refuses_to_start(start, sockdir):
    """Issue 11 #13: the admin state is never guessed."""
    state = os.path.join(sockdir, "override.state")
    for text, where in (("admin = maint\nadmin = drain\n",
                         ":2: 'admin' given twice (first on line 1)"),
                        ("uid = 0\nadmin = mantenance\n", ":2: bad admin 'mantenance'"),
                        ("admin: maint\n", ":1: expected 'key = value', got 'admin: "
                         "maint', and no valid 'admin' line")):
        with open(state, "w") as f:
            f.write(text)
        srv = start(wait=False)
        assert srv.wait_exit() == 1
        assert ("harness: cannot restore the operator override from %s%s; refusing "
                "to start" % (state, where)) in srv.log(), srv.log()
        assert not os.path.exists(srv.sock)
        with open(state) as f:
            assert f.read() == text  # left for the operator to see


def test_ready_forgotten_after_its_window(start):
    """Issue 11 #3: once `ready` has been said for the window, prev is cleared
    and saved, so a restart owes HAProxy nothing; a restart inside the window
    still owes it (prev kept)."""
    srv = start(ready_ms=400)
    assert request(srv.sock, "drain\n") == "ok drain\n"
    srv.change()
    assert request(srv.sock, "ready\n") == "ok ready\n"
    srv.change()
    assert read_state(srv.state)["prev"] == "drain"
    srv.stop()  # inside the window
    srv = start(ready_ms=400)
    assert status(srv.sock)["prev"] == "drain"
    srv.wait_log("override: said ready for the ready window after drain; a restart "
                 "will not say it again")
    wait_state(srv.state, "prev", "ready")
    assert status(srv.sock)["prev"] == "ready"
    assert read_state(srv.state)["admin"] == "ready"
    srv.stop()
    srv = start(ready_ms=400)
    assert status(srv.sock)["prev"] == "ready"


def test_unwritable_state_keeps_override(start, sockdir):
    """The override holds in memory when the disk refuses it, and says so."""
    state = os.path.join(sockdir, "override.state")
    srv = start()
    os.mkdir(state + ".tmp")  # the temporary file cannot be created
    reply = request(srv.sock, "drain\n")
    assert reply.startswith("ok drain (not saved, lost on restart: cannot write state file")
    assert srv.change()["admin"] == "drain"
    assert status(srv.sock)["saved"] is False
    srv.wait_log("it holds only until happac stops")
    os.rmdir(state + ".tmp")
    assert request(srv.sock, "maint\n") == "ok maint\n"
    assert status(srv.sock)["saved"] is True


# ---- the ramp

def test_ramp_rises_and_ends(start):
    srv = start()
    assert request(srv.sock, "drain\n") == "ok drain\n"
    srv.change()
    t0 = time.monotonic()
    assert request(srv.sock, "ready --ramp 1500ms\n") == "ok ready\n"
    first = srv.change()
    assert first["admin"] == "ready" and first["prev"] == "drain"
    assert first["ramp_ms"] == "1500" and 1 <= int(first["weight"]) <= 10
    st = status(srv.sock)
    assert st["ramp_ms"] == 1500 and 1 <= st["ramp_weight"] <= 100
    assert 0 < st["ramp_left_ms"] <= 1500
    weights = [int(first["weight"])]
    while True:
        ch = srv.change(timeout=3)
        if ch["ramp_ms"] == "0":
            break
        weights.append(int(ch["weight"]))
    took = time.monotonic() - t0
    assert ch == {"admin": "ready", "prev": "drain", "uid": str(UID), "ramp_ms": "0",
                  "weight": "-1"}
    assert 1.4 < took < 2.5, took
    assert weights == sorted(weights) and len(set(weights)) == len(weights)
    assert len(weights) >= 5 and weights[-1] >= 80
    srv.wait_log("override: weight ramp of 1.5s finished: full weight")
    wait_state(srv.state, "ramp_ms", "0")
    assert status(srv.sock)["ramp_weight"] is None


def test_ramp_survives_restart(start):
    srv = start()
    assert request(srv.sock, "drain\n") == "ok drain\n"
    srv.change()
    assert request(srv.sock, "ready --ramp 60s\n") == "ok ready\n"
    srv.change()
    time.sleep(1.3)
    w1 = status(srv.sock)["ramp_weight"]
    assert 1 <= w1 <= 5
    srv.stop()
    srv = start()
    srv.wait_log("override: restored a 60.0s weight ramp from %s" % srv.state)
    st = status(srv.sock)
    assert st["admin"] == "ready" and st["prev"] == "drain"
    assert st["ramp_ms"] == 60000 and st["ramp_weight"] >= w1
    assert 50000 < st["ramp_left_ms"] < 59000


def test_ramp_that_ended_while_stopped(start):
    srv = start()
    assert request(srv.sock, "ready --ramp 1s\n") == "ok ready\n"
    srv.change()
    srv.stop()
    time.sleep(1.2)
    srv = start()
    srv.wait_log("ended while happac was stopped")
    assert status(srv.sock)["ramp_weight"] is None
    wait_state(srv.state, "ramp_ms", "0")


def test_drain_cancels_ramp(start):
    srv = start()
    assert request(srv.sock, "ready --ramp 60s\n") == "ok ready\n"
    assert srv.change()["ramp_ms"] == "60000"
    assert request(srv.sock, "drain\n") == "ok drain\n"
    ch = srv.change()
    assert ch["admin"] == "drain" and ch["ramp_ms"] == "0" and ch["weight"] == "-1"
    assert request(srv.sock, "ready --ramp 60s\n") == "ok ready\n"
    srv.change()
    assert request(srv.sock, "ready\n") == "ok ready\n"  # cancels the ramp
    assert srv.change()["ramp_ms"] == "0"


# ---- the socket file

def test_socket_mode_and_cleanup(start):
    srv = start()
    st = os.lstat(srv.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    srv.stop()
    assert not os.path.exists(srv.sock)


def test_socket_dir_missing(start, sockdir):
    sock = os.path.join(sockdir, "no", "such", "dir", "happac.sock")
    srv = start(sock=sock, wait=False)
    assert srv.wait_exit() == 1
    assert ("cannot create control socket %s: directory %s does not exist"
            % (sock, os.path.dirname(sock))) in srv.log()


def test_state_dir_missing(start, sockdir):
    state = os.path.join(sockdir, "nope", "override.state")
    srv = start(state=state, wait=False)
    assert srv.wait_exit() == 1
    assert ("state file %s: directory %s does not exist"
            % (state, os.path.dirname(state))) in srv.log()
    assert not os.path.exists(srv.sock)


def test_stale_socket_replaced(start, sockdir):
    sock = os.path.join(sockdir, "happac.sock")
    stale_socket(sock)
    srv = start(sock=sock)
    srv.wait_log("control: replaced the stale socket %s" % sock)
    assert status(sock)["admin"] == "ready"


def test_live_socket_not_stolen(start):
    first = start()
    second = start(sock=first.sock, wait=False)
    assert second.wait_exit() == 1
    assert "control socket %s is in use" % first.sock in second.log()
    assert status(first.sock)["admin"] == "ready"  # untouched
    # The loser must not unlink the winner's socket on its way out.
    assert os.path.exists(first.sock)


def test_not_a_socket_left_alone(start, sockdir):
    path = os.path.join(sockdir, "happac.sock")
    with open(path, "w") as f:
        f.write("precious\n")
    srv = start(sock=path, wait=False)
    assert srv.wait_exit() == 1
    assert "exists and is not a socket; not replacing it" in srv.log()
    assert open(path).read() == "precious\n"


# ---- the client: happac ctl

def test_client_commands(start, client):
    srv = start()
    r = client("--socket", srv.sock, "drain")
    assert (r.returncode, r.stdout, r.stderr) == (0, "ok drain\n", "")
    assert srv.change()["admin"] == "drain"
    r = client("--socket=" + srv.sock, "status")
    assert r.returncode == 0
    assert json.loads(r.stdout)["admin"] == "drain"
    r = client("ready", "--ramp", "30s", "--socket", srv.sock)
    assert (r.returncode, r.stdout) == (0, "ok ready\n")
    assert srv.change()["ramp_ms"] == "30000"
    r = client("ready", "--ramp=2m", env={"HAPPAC_CONTROL_SOCKET": srv.sock})
    assert (r.returncode, r.stdout) == (0, "ok ready\n")
    assert srv.change()["ramp_ms"] == "120000"
    r = client("--socket", srv.sock, "maint")
    assert r.returncode == 0
    srv.wait_log("override: maint set by uid %d" % UID)


@pytest.mark.parametrize("args, needle", [
    ([], "empty request"),
    (["bogus"], "unknown command 'bogus'"),
    (["drain", "now"], "'drain' takes no arguments"),
    (["ready", "--ramp"], "--ramp needs a duration"),
    (["ready", "--ramp", "5x"], "invalid duration '5x'"),
    (["ready", "--ramp", "100ms"], "out of range"),
    (["status", "--socket"], "--socket needs a path"),
])
def test_client_bad_usage(start, client, args, needle):
    srv = start()
    r = client("--socket", srv.sock, *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and r.stdout == ""
    srv.no_change(0.1)


def test_client_help(client):
    r = client("--help")
    assert r.returncode == 0
    assert r.stdout.startswith("usage: happac ctl [--socket PATH]")
    assert "/run/happac/happac.sock" in r.stdout


def test_client_without_daemon(client, sockdir):
    missing = os.path.join(sockdir, "absent.sock")
    r = client("--socket", missing, "status")
    assert r.returncode == 2
    assert r.stderr.startswith("happac ctl: cannot connect to %s: No such file" % missing)
    assert "--control-socket" in r.stderr
    stale = os.path.join(sockdir, "stale.sock")
    stale_socket(stale)
    r = client("--socket", stale, "drain")
    assert r.returncode == 2
    assert "cannot connect to %s: Connection refused" % stale in r.stderr
    r = client("status", env={"HAPPAC_CONTROL_SOCKET": ""})
    if r.returncode == 2:  # no daemon on this machine: the default path is named
        assert "/run/happac/happac.sock" in r.stderr


def test_client_wedged_daemon(client, sockdir):
    """A daemon that accepts but never answers cannot hang the shell."""
    path = os.path.join(sockdir, "wedged.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    t0 = time.monotonic()
    r = client("--socket", path, "status")
    assert r.returncode == 2
    assert "no reply from %s within 5s" % path in r.stderr
    assert time.monotonic() - t0 < 8
    s.close()
