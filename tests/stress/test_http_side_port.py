"""Hostile clients on the HTTP side port (--http-listen), and what they do to
the agent port that shares the process.

happac runs here with RLIMIT_NOFILE 1024, the soft limit systemd gives a
service that does not set LimitNOFILE (systemd/happac.service does not, and
its SystemCallFilter=~@resources keeps happac from raising it): that is
happac's fd budget in production.
"""

import resource
import socket
import time

import pytest

import stresslib as sl

HTTP = (sl.AGENT_ADDR, sl.HTTP_PORT)
NOFILE_SERVICE = 1024
HTTP_TIMEOUT_S = 5  # src/http.c HTTP_TIMEOUT_S


def _service_limits():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE_SERVICE, hard))


@pytest.fixture
def happac_http(happac):
    return happac("--http-listen", "%s:%d" % HTTP, preexec_fn=_service_limits)


def _exchange(payload, timeout=HTTP_TIMEOUT_S + 3):
    """Send payload, read to EOF. Returns (response bytes, seconds)."""
    c = socket.socket()
    c.settimeout(timeout)
    c.bind((sl.HOSTILE_SRCS[0], 0))
    c.connect(HTTP)
    t0 = time.monotonic()
    buf = b""
    try:
        try:
            c.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while len(buf) < 1 << 20:
            b = c.recv(65536)
            if not b:
                break
            buf += b
    except ConnectionResetError:
        pass
    finally:
        c.close()
    return buf, time.monotonic() - t0


MALFORMED = [
    ("garbage", b"GARBAGE\r\n\r\n"),
    ("no-version", b"GET /health\r\n\r\n"),
    ("bad-version", b"GET /health HTTP/9.9\r\n\r\n"),
    ("binary", bytes(range(256)) * 4 + b"\r\n\r\n"),
    ("nul-in-path", b"GET /hea\x00lth HTTP/1.1\r\n\r\n"),
    ("huge-request-line", b"GET /" + b"a" * 200000 + b" HTTP/1.1\r\n\r\n"),
    ("huge-header", b"GET /health HTTP/1.1\r\nX: " + b"a" * 200000 + b"\r\n\r\n"),
    ("many-headers", b"GET /health HTTP/1.1\r\n"
     + b"".join(b"X-%d: y\r\n" % i for i in range(2000)) + b"\r\n"),
    ("1MB-body", b"POST /health HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n" + b"x" * (1 << 20)),
    ("negative-length", b"POST /health HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
    ("bad-chunk", b"POST /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    ("huge-chunk", b"POST /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"ffffffffffffffff\r\n"),
    ("traversal", b"GET /../../etc/passwd HTTP/1.1\r\n\r\n"),
    ("method", b"DELETE /health HTTP/1.1\r\n\r\n"),
    # Patroni's paths (#17): the same limits, and 400 for what happac cannot honour
    ("patroni-path-method", b"DELETE /primary HTTP/1.1\r\n\r\n"),
    ("patroni-path-bad-lag", b"GET /replica?lag=%ff%00x HTTP/1.1\r\n\r\n"),
    ("patroni-path-tag", b"GET /read-only?tag_" + b"k" * 5000 + b"=v HTTP/1.1\r\n\r\n"),
    ("patroni-path-replication-state", b"OPTIONS /replica?replication_state=streaming "
     b"HTTP/1.1\r\n\r\n"),
    ("patroni-path-huge-query", b"GET /primary?" + b"lag=1&" * 40000 + b" HTTP/1.1\r\n\r\n"),
    ("patroni-path-many-headers", b"HEAD /leader HTTP/1.1\r\n"
     + b"".join(b"X-%d: y\r\n" % i for i in range(2000)) + b"\r\n"),
    ("patroni-path-nul", b"GET /prim\x00ary HTTP/1.1\r\n\r\n"),
]


def test_malformed_requests_get_4xx_or_close(happac_http):
    """Every malformed request ends in a 4xx (or a close) at once; never a
    crash, never a 2xx/5xx, and the daemon serves /health afterwards."""
    h = happac_http
    results = {}
    for name, payload in MALFORMED:
        resp, took = _exchange(payload)
        status = resp.split(b"\r\n", 1)[0]
        results[name] = (status.decode("latin-1"), round(took, 3))
        assert h.alive(), "happac died on %s:\n%s" % (name, h.log()[-3000:])
        assert not resp or (resp.startswith(b"HTTP/1.") and resp[9:10] == b"4"), (
            "%s: %r" % (name, resp[:200]))
        assert took <= 1.0, "%s: took %.2fs" % (name, took)
    sl.report("http-malformed", results=results)
    for path in (b"/health", b"/primary", b"/leader?lag=1MB&tag_x=y&x", b"/read-only?lag=1MB"):
        resp, _ = _exchange(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert resp.startswith(b"HTTP/1.1 200"), (path, resp[:200])


def test_slow_http_clients_are_cut_by_the_timeout(workdir, happac_http):
    """A request head that never completes (slowloris: one byte a second) is
    closed once the HTTP timeout (5 s) has passed since the connection was
    accepted, however often bytes trickle in; the daemon's fds come back.
    (An idle timeout that every byte renews never ends such a request: 50
    clients at 1 byte/s would hold 50 fds for ever, 1,000 the whole budget.)"""
    h = happac_http
    idle = h.fds()
    flood = sl.start_flood(workdir, "slowloris", 50, hold=HTTP_TIMEOUT_S + 4.0,
                           port=sl.HTTP_PORT)
    res = sl.finish_json(flood, 60)
    sl.report("http-slowloris", flood=res)
    assert h.alive()
    assert res["counts"].get("open", 0) == 0, (
        "%d of 50 slowloris clients still open %.0f s after connecting (HTTP timeout %d s): "
        "%s" % (res["counts"].get("open", 0), HTTP_TIMEOUT_S + 4.0, HTTP_TIMEOUT_S, res))
    assert res["outcome_ms_max"] <= (HTTP_TIMEOUT_S + 1.5) * 1000, res
    sl.poll_until(lambda: h.fds() <= idle, 3, what="fds back to idle")


def test_idle_http_connections_cannot_starve_the_agent(workdir, happac_http):
    """2,000 idle connections on the HTTP port (never a byte; each would be
    held for the 5 s HTTP timeout) while HAProxy checks the agent port.

    Expected (issue 7: a cap on concurrent connections, excess closed at
    accept and counted): the HTTP port stays within a share of the fd budget,
    so the agent keeps answering within 10 ms, the probes keep their sockets
    (the verdict stays `up`), and nothing floods the log."""
    h = happac_http
    idle = h.fds()
    checker = sl.start_checker(workdir, 600, 5)
    flood = sl.start_flood(workdir, "hold", 2000, hold=3.0, extra=["--hold-open"],
                           port=sl.HTTP_PORT)
    peak = sl.peak_fds(h, (flood, checker), 0.01)
    fres = sl.finish_json(flood, 60)
    cres = sl.finish_json(checker, 60)
    lat = sl.summarize_latency(cres)
    log = h.log()
    log_lines = log.count("\n")
    verdicts = h.verdicts()
    sl.report("http-idle-flood", flood=fres["counts"], checks=lat, lines=cres["lines"],
              peak_fds=peak,
              idle_fds=idle, log_lines=log_lines, verdicts=verdicts[1:])
    assert h.alive(), log[-3000:]
    problems = []
    if peak >= min(h.nofile(), NOFILE_SERVICE) - 8:
        problems.append("fds reached the limit (%d of %d): no cap on HTTP connections"
                        % (peak, NOFILE_SERVICE))
    if sl.latency_problems(lat):
        problems.append("agent checks: %s" % "; ".join(sl.latency_problems(lat)))
    if set(cres["lines"]) != {"up\n"} or len(verdicts) > 1:
        problems.append("the verdict left `up` (probes could not get a socket): %s"
                        % [v for _, v in verdicts[1:]])
    if log_lines > 100:
        problems.append("%d log lines in a few seconds (e.g. %r)" % (
            log_lines, sorted(set(log.splitlines()), key=log.count)[-1][:120]))
    assert not problems, "; ".join(problems)
