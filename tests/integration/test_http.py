"""The HTTP side port (/health, /status, /metrics) and SIGHUP reloads, against
the real PgBouncer/PostgreSQL and the Patroni stand-in."""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

import procs
from agent_client import check, equals, starts, wait_reply
from agentcheck import talk
from procs import ADDR, AGENT_PORT, poll_until

HTTP_PORT = 8098
BASE = "http://%s:%d" % (ADDR, HTTP_PORT)


def bound():
    return 0.2 + 0.15 + 0.3


def get(path, method="GET", headers=None):
    req = urllib.request.Request(BASE + path, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def raw(data, read_timeout=5):
    return talk((ADDR, HTTP_PORT), data, read_timeout)[0]


@pytest.fixture
def http_happac(happac, backends):
    return happac("--http-listen", "%s:%d" % (ADDR, HTTP_PORT))


def test_health_follows_the_verdict(http_happac, backends):
    """/health?profile=NAME: that profile's line (Consul's checks)."""
    status, body, headers = get("/health?profile=primary")
    assert (status, body) == (200, b"up\n")
    assert headers["Content-Type"].startswith("text/plain")
    backends[1].set("503")
    wait_reply(AGENT_PORT, starts("down"), bound())
    status, body, _ = get("/health?profile=primary")
    assert (status, body) == (503, b"down #patroni /primary: 503\n")
    # HEAD: the status only
    status, body, _ = get("/health?profile=primary", method="HEAD")
    assert status == 503 and body == b""


def test_status_json(http_happac, backends):
    status, body, headers = get("/status")
    assert status == 200 and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["verdict"] == "up" and doc["reason"] == "" and doc["line"] == "up\n"
    assert doc["version"]
    names = [p["name"] for p in doc["probes"]]
    assert names == ["patroni", "pgbouncer"]
    for p in doc["probes"]:
        assert p["result"] == "ok" and p["ok"] is True and p["error"] is None
        assert 0 <= p["duration_ms"] < 150 and 0 <= p["age_ms"] < 1000
    assert doc["config"]["patroni-host"] == ADDR
    assert doc["config"]["listen"] == [ADDR]
    assert doc["profiles"][0]["name"] == "primary"
    backends[0].kill()
    # (a probe in flight at the kill may first say "connection closed")
    wait_reply(AGENT_PORT, equals("down #pgbouncer %s:6432: connection refused\n" % ADDR),
               2 * bound())
    doc = json.loads(get("/status")[1])
    assert doc["verdict"] == "down"
    assert doc["reason"] == "pgbouncer %s:6432: connection refused" % ADDR
    pg = doc["probes"][1]
    assert pg["ok"] is False and pg["result"] == "connection refused"


def test_metrics_pass_promtool(http_happac, backends, workdir):
    for _ in range(5):
        check(AGENT_PORT)
    status, body, headers = get("/metrics")
    assert status == 200 and "version=0.0.4" in headers["Content-Type"]
    text = body.decode()
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert "happac_up 1" in text
    checks = [l for l in text.splitlines() if l.startswith('happac_agent_checks_total{verdict="up"}')]
    assert checks and int(checks[0].split()[-1]) >= 5
    for name in ("happac_probe_duration_seconds_bucket{probe=\"patroni\",le=\"+Inf\"}",
                 "happac_probe_failures_total{probe=\"pgbouncer\",reason=\"timeout\"}",
                 "happac_verdict_transitions_total", "happac_probe_in_flight{probe=\"patroni\"}",
                 "happac_build_info{version="):
        assert name in text, name


def test_bad_requests_get_4xx_and_the_daemon_lives(http_happac):
    assert get("/nope")[0] == 404
    status, _, headers = get("/health", method="POST")
    assert status == 405 and headers.get("Allow") == "GET, HEAD, OPTIONS"
    status, _, headers = get("/metrics", method="OPTIONS")
    assert status == 405 and headers.get("Allow") == "GET, HEAD"
    assert get("/health", headers={"X-Big": "a" * 9000})[0] == 431
    assert get("/health", headers={"X-%d" % i: "v" for i in range(80)})[0] == 431
    assert raw(b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw(b"GET /health HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 431")
    assert raw(b"\x00\xff\xfe binary \r\n\r\n").startswith(b"HTTP/1.1 400")
    assert get("/health?profile=nosuch")[0] == 404
    assert http_happac.alive()
    assert get("/health")[0] == 200


def test_slow_client_is_cut_and_others_are_served(http_happac):
    s = socket.create_connection((ADDR, HTTP_PORT), timeout=10)
    s.sendall(b"GET /health HTTP/1.1\r\n")  # never finishes the request
    t0 = time.monotonic()
    assert get("/health")[0] == 200           # others are served meanwhile
    s.settimeout(10)
    try:
        data = s.recv(100)
    except OSError:
        data = b""
    waited = time.monotonic() - t0
    s.close()
    assert waited < 8, waited                 # evhttp's 5 s timeout closed it
    assert http_happac.alive()


def test_at_most_64_connections(http_happac):
    """64 connections are held (each up to its 5 s deadline); the 65th is
    closed at accept without a byte; a held one is still answered (on a
    Patroni path too), and once they close new ones are served again."""
    held = [socket.create_connection((ADDR, HTTP_PORT), timeout=5) for _ in range(64)]
    try:
        got = talk((ADDR, HTTP_PORT), b"GET /primary HTTP/1.0\r\n\r\n", lenient=True)[0]
        assert got == b"", got
        held[0].sendall(b"GET /primary HTTP/1.0\r\n\r\n")
        assert held[0].recv(100).startswith(b"HTTP/1.1 200")
    finally:
        for c in held:
            c.close()
    poll_until(lambda: get("/primary")[0] == 200, 3, what="served again")
    assert http_happac.alive()


def _conf(workdir, text):
    path = os.path.join(workdir, "reload.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_reload_rebinds_changed_and_keeps_unchanged(happac, backends, workdir):
    """SIGHUP: a new listener appears, the unchanged one never stops
    answering, a removed one closes; the interval change takes effect."""
    path = _conf(workdir, "[happac]\npatroni-host = %s\npg-is-ready-port = 6432\n"
                          "listen = %s\nport = %d\ninterval = 200ms\ntimeout = 150ms\n"
                 % (ADDR, ADDR, AGENT_PORT))
    h = happac(args=["-c", path])
    stop = threading.Event()
    failures, answers = [], []

    def hammer():
        while not stop.is_set() and len(answers) < 20000:
            try:
                answers.append(check(AGENT_PORT)[0])
            except Exception as e:  # a refused or dropped check
                failures.append(repr(e))
    t = threading.Thread(target=hammer)
    t.start()
    try:
        _conf(workdir, "[happac]\npatroni-host = %s\npg-is-ready-port = 6432\n"
                       "listen = %s\nlisten = 127.0.0.22\nport = %d\ninterval = 300ms\n"
                       "timeout = 150ms\nhttp-listen = %s:%d\n"
              % (ADDR, ADDR, AGENT_PORT, ADDR, HTTP_PORT))
        h.proc.send_signal(signal.SIGHUP)
        poll_until(lambda: "reloaded:" in h.log(), 5, what="reload logged")
        # the new listener answers (the verdict is the probes' business: a
        # probe slowed by this very load may move it for a moment)
        assert check(AGENT_PORT, addr="127.0.0.22")[0].split()[0] in ("up", "down")
        assert get("/health")[0] in (200, 503)
        doc = json.loads(get("/status")[1])
        assert doc["config"]["interval"] == "300ms"
        # keep checking across the reload and a little after it
        poll_until(lambda: len(answers) >= 30, 10, what="30 checks across the reload")
    finally:
        stop.set()
        t.join(10)
    # Not one check refused or left without a line while the listeners
    # were reconciled (the verdict itself may move: that is the probes').
    assert not failures, failures[:5]
    assert len(answers) >= 30
    assert all(a.endswith("\n") and a.split()[0] in ("up", "down") for a in answers)
    # remove the second address: it closes
    _conf(workdir, "[happac]\npatroni-host = %s\npg-is-ready-port = 6432\n"
                   "listen = %s\nport = %d\ninterval = 300ms\ntimeout = 150ms\n"
          % (ADDR, ADDR, AGENT_PORT))
    h.proc.send_signal(signal.SIGHUP)
    poll_until(lambda: h.log().count("reloaded:") == 2, 5, what="second reload")
    with pytest.raises(OSError):
        check(AGENT_PORT, addr="127.0.0.22")
    wait_reply(AGENT_PORT, equals("up\n"), 2 * bound())


def test_bad_reload_keeps_running_config(happac, backends, workdir):
    path = _conf(workdir, "[happac]\npatroni-host = %s\npg-is-ready-port = 6432\n"
                          "listen = %s\nport = %d\ninterval = 200ms\ntimeout = 150ms\n"
                 % (ADDR, ADDR, AGENT_PORT))
    h = happac(args=["-c", path])
    _conf(workdir, "[happac]\npatroni-host = %s\npg-is-ready-port = 6432\n"
                   "listen = %s\nport = 0\n" % (ADDR, ADDR))
    h.proc.send_signal(signal.SIGHUP)
    poll_until(lambda: "reload failed" in h.log(), 5, what="reload failure logged")
    line = [l for l in h.log().splitlines() if "reload failed" in l][0]
    assert "reload.conf:5:" in line and "'0'" in line, line
    assert check(AGENT_PORT)[0] == "up\n"
    # a listener that cannot be bound fails the reload too, and changes nothing
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.22", AGENT_PORT))
    blocker.listen(1)
    try:
        _conf(workdir, "[happac]\npatroni-host = %s\npg-is-ready-port = 6432\n"
                       "listen = %s\nlisten = 127.0.0.22\nport = %d\n"
              % (ADDR, ADDR, AGENT_PORT))
        h.proc.send_signal(signal.SIGHUP)
        poll_until(lambda: h.log().count("reload failed") == 2, 5, what="second failure")
        assert "127.0.0.22:%d" % AGENT_PORT in h.log().splitlines()[-1] or \
            "127.0.0.22" in [l for l in h.log().splitlines() if "reload failed" in l][-1]
    finally:
        blocker.close()
    assert check(AGENT_PORT)[0] == "up\n"
    assert h.alive()
