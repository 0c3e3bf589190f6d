"""`happac ctl probe` and `happac ctl stopping` (issue 16): what Patroni's callbacks and its
before_stop hook call. A probe request starts a round at once, a flood of them is
coalesced (rounds at most every 50 ms), the call never blocks Patroni (bounded, exit 0
when happac is not running), and `stopping` says down at once until Patroni's answer
moves. The Patroni stand-in counts the rounds (one request each)."""

import json
import os
import socket
import urllib.request
import subprocess
import threading
import time

from agent_client import equals, starts, wait_reply
from harness import happac_bin
from procs import ADDR, AGENT_PORT, poll_until

KICK_GAP = 0.05   # PROBE_KICK_GAP_MS


def ctl(sock, *words, timeout=5):
    t0 = time.monotonic()
    r = subprocess.run([happac_bin(), "ctl", "--socket", sock] + list(words),
                       capture_output=True, text=True, timeout=timeout)
    return r, time.monotonic() - t0


def requests(standin):
    return standin.stats()["requests"]


def test_probe_starts_a_round_now_and_a_flood_coalesces(happac, backends, workdir):
    _, standin = backends
    sock = os.path.join(workdir, "probe.sock")
    happac("--control-socket", sock, interval="60s")
    standin.reset()
    # Patroni appends (action, role, scope) to a callback's command: ignored.
    r, took = ctl(sock, "probe", "on_role_change", "master", "happac-lab")
    assert (r.returncode, r.stdout, r.stderr) == (0, "ok probe\n", "")
    poll_until(lambda: requests(standin) >= 1, 1.0, step=0.01, what="a round after ctl probe")

    # A flood: 200 requests from 8 threads, as fast as they go.
    standin.reset()
    errors = []

    def flood():
        for _ in range(25):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            try:
                s.connect(sock)
                s.sendall(b"probe\n")
                if s.recv(64) != b"ok probe\n":
                    errors.append("bad reply")
            except OSError as e:
                errors.append(str(e))
            finally:
                s.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=flood) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    poll_until(lambda: requests(standin) >= 1, 1.0, step=0.01, what="a round after the flood")
    n = requests(standin)
    elapsed = time.monotonic() - t0
    assert not errors, errors[:3]
    # At most one round per PROBE_KICK_GAP_MS, however many requests (the
    # fast pace after a callback is 50 ms too, issue 16).
    assert n <= elapsed / KICK_GAP + 2, f"{n} rounds for 200 requests in {elapsed:.2f}s"
    # A callback fetches the members ahead of the hold that may follow
    # (peer_prefetch): once for the whole flood, even when the document is
    # no use (this stand-in answers /cluster with a node's status).
    assert standin.stats()["by_path"].get("/cluster", 0) <= 1, standin.stats()["by_path"]
    assert n < 50, f"{n} rounds for 200 requests: not coalesced"


def test_probe_never_blocks_patroni(tmp_path):
    """No daemon: exit 0 with one line on stderr. A socket that accepts and never
    answers (a stand-in for a wedged happac): exit 0 within the 100 ms bound."""
    d = str(tmp_path)
    missing = os.path.join(d, "none.sock")
    for words in (["probe"], ["stopping"], ["probe", "on_stop", "replica", "x"]):
        r, took = ctl(missing, *words)
        assert r.returncode == 0, r
        assert r.stdout == ""
        assert len(r.stderr.splitlines()) == 1, r.stderr
        assert "not delivered, nothing to do" in r.stderr
    wedged = os.path.join(d, "wedged.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(wedged)
    srv.listen(16)  # never accepted: connect succeeds, no reply ever comes
    try:
        r, took = ctl(wedged, "probe")
        assert r.returncode == 0 and "no reply" in r.stderr, r
        # the 100 ms bound plus the start of a process on a busy machine
        assert took < 0.4, f"ctl probe took {took:.3f}s against a silent socket"
    finally:
        srv.close()
    # The other commands still say when the daemon is missing.
    r, _ = ctl(missing, "status")
    assert r.returncode == 2 and "cannot connect" in r.stderr


def test_stopping_says_down_at_once_until_patronis_answer_moves(happac, backends, workdir):
    _, standin = backends
    sock = os.path.join(workdir, "stop.sock")
    happac("--control-socket", sock, "--http-listen", f"{ADDR}:8097")
    wait_reply(AGENT_PORT, equals("up\n"), 5)
    r, took = ctl(sock, "stopping")
    assert (r.returncode, r.stdout) == (0, "ok stopping\n")
    # at once: the reply came after the line changed
    wait_reply(AGENT_PORT, equals("down #patroni: stopping\n"), 0.05)
    with urllib.request.urlopen(f"http://{ADDR}:8097/status", timeout=5) as resp:
        hold = json.loads(resp.read())["hold"]
    assert hold["patroni_stopping"] is True and hold["probe_requests"] == 1, hold
    assert hold["holding"] is False and hold["peers"]["agent_port"] == AGENT_PORT, hold
    # Patroni still answers 200 (PostgreSQL not stopped yet): still stopping
    time.sleep(0.5)  # several rounds (200 ms each) that must not end it
    wait_reply(AGENT_PORT, equals("down #patroni: stopping\n"), 0.05)
    # PostgreSQL stopped: Patroni's own answer takes over
    standin.set("status:503")
    wait_reply(AGENT_PORT, equals("down #patroni /primary: 503\n"), 2)
    standin.set("primary")
    wait_reply(AGENT_PORT, starts("down #patroni: primary role is new"), 2)
    wait_reply(AGENT_PORT, equals("up\n"), 3)
