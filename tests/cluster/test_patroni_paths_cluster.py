"""Patroni's health paths served by happac's side port (issue #17), on the real
cluster: the same codes as Patroni on every node while PgBouncer is healthy
(bare /health included), 503 where Patroni says 200 when PgBouncer is dead,
frozen or misrouted, 10,000 checks answered at the cost of one Patroni request
per round, and the lab's HAProxy running `happac recipe haproxy --scenario a
--via-happac` next to plain Scenario A: the via-happac backend takes the primary
out when its PgBouncer is killed, frozen or misrouted (plain Scenario A keeps it
UP) and brings it back after the fix.

Runs on the lab after the failure matrix. Extra happacs (agent ports 5568-5571,
HTTP ports 8405-8408; a counting relay to Patroni on port 8018) run on every node's own address and are stopped by pid
afterwards; the lab's HAProxy gets its own configuration back.
"""

import http.client
import json
import re
import socket
import subprocess
import threading
import time

import pytest

import happac_cluster as hc
from harness import hammer  # tests/lib
from test_profiles_cluster import CONNINFO, Extra, extras, healthy  # noqa: F401 (fixtures)

AGENT = 5568
HTTP = 8405
PATHS = ["/", "/primary", "/master", "/read-write", "/leader", "/replica", "/read-only",
         "/sync", "/synchronous", "/async", "/asynchronous", "/read-only-sync",
         "/read-only-synchronous", "/quorum", "/read-only-quorum", "/standby-leader",
         "/standby_leader", "/liveness", "/readiness", "/health"]
METHODS = ("GET", "HEAD", "OPTIONS")
I, T = hc.HAPPAC_INTERVAL, hc.HAPPAC_TIMEOUT


def happac_status(n, path, method="GET", timeout=2.0, port=HTTP):
    conn = http.client.HTTPConnection(hc.node_addr(n), port, timeout=timeout)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def patroni_version(n):
    conn = http.client.HTTPConnection(hc.node_addr(n), hc.PATRONI_PORT, timeout=2)
    try:
        conn.request("GET", "/patroni")
        return json.loads(conn.getresponse().read())["patroni"]["version"]
    finally:
        conn.close()


def compared(path, method, major):
    """What Patroni answers alike: its HEAD/OPTIONS on /liveness and /readiness
    fall through to the generic handler (503 whatever the state, both versions),
    where happac answers as for GET; Patroni 3 has no quorum rules (it takes
    /read-only-quorum for /read-only)."""
    if method != "GET" and path in ("/liveness", "/readiness"):
        return False
    return not (major < 4 and path == "/read-only-quorum")


@pytest.fixture
def side_ports(lab):
    started = [Extra(lab, n, f"happac-paths{n}", AGENT, "--http-listen",
                     f"{hc.node_addr(n)}:{HTTP}") for n in hc.NODES]
    yield started
    for e in started:
        e.stop()


def codes_match(major):
    diff = {}
    for n in hc.NODES:
        for path in PATHS:
            for m in METHODS:
                if not compared(path, m, major):
                    continue
                ours, theirs = happac_status(n, path, m)[0], hc.patroni_status(n, path, m)
                if ours != theirs:
                    diff[(n, path, m)] = (ours, theirs)
    return diff


def test_every_path_and_method_equals_patroni(lab, healthy, side_ports):  # noqa: F811
    major = int(patroni_version(1).split(".")[0])
    # Patroni's and happac's reading may straddle a round: settle, then compare
    # until one whole pass agrees (bounded).
    deadline = time.monotonic() + 20
    diff = codes_match(major)
    while diff and time.monotonic() < deadline:
        time.sleep(I)
        diff = codes_match(major)
    assert not diff, f"(happac, Patroni) differ: {diff}"
    primary = healthy[0]
    assert happac_status(primary, "/primary") == (200, b"up\n")
    # bare /health is Patroni's on every node (PostgreSQL running, any role);
    # a happac profile's answer is /health?profile=NAME
    for n in hc.NODES:
        assert hc.patroni_status(n, "/health") == 200
        assert happac_status(n, "/health") == (200, b"up\n")
        assert happac_status(n, "/health?profile=health")[0] == 200
        assert happac_status(n, "/health?profile=primary")[0] == (200 if n == primary else 503)


@pytest.mark.parametrize("how", ["kill", "freeze"])
def test_pgbouncer_failure_is_503_where_patroni_says_200(lab, healthy, side_ports, how):  # noqa: F811
    """Every node's PgBouncer killed or frozen: the primary's paths and every
    node's bare /health say 503 while Patroni says 200."""
    primary = healthy[0]
    for n in hc.NODES:
        if how == "kill":
            lab.kill_pgbouncer(n)
        else:
            lab.freeze(f"pgbouncer{n}")
    try:
        hc.wait_for("happac 503 on the primary's paths and every /health",
                    lambda: all(happac_status(primary, p)[0] == 503
                                for p in ("/primary", "/leader", "/read-write", "/read-only"))
                    and all(happac_status(n, "/health")[0] == 503 for n in hc.NODES),
                    I + T + 2)
        for p in ("/primary", "/leader", "/read-write", "/read-only"):
            for m in METHODS:
                assert happac_status(primary, p, m)[0] == 503, (p, m)
                assert hc.patroni_status(primary, p, m) == 200, (p, m)
        body = happac_status(primary, "/primary")[1]
        assert body.startswith(b"down #pgbouncer"), body
        for n in hc.NODES:
            assert hc.patroni_status(n, "/health") == 200, n
            for m in METHODS:
                assert happac_status(n, "/health", m)[0] == 503, (n, m)
            assert happac_status(n, "/health")[1].startswith(b"down #pgbouncer"), n
    finally:
        for n in hc.NODES:
            if how == "kill":
                lab.start_pgbouncer(n)
            else:
                lab.thaw(f"pgbouncer{n}")
    hc.wait_for("happac 200 again",
                lambda: happac_status(primary, "/primary")[0] == 200
                and all(happac_status(n, "/health")[0] == 200 for n in hc.NODES),
                hc.PGBOUNCER_LOGIN_RETRY + 10)


def test_misrouted_pgbouncer_is_503_where_patroni_says_200(lab, healthy, extras):  # noqa: F811
    """The primary's PgBouncer reloaded to reach a replica: with --pg-conninfo
    happac's /primary says 503 (role mismatch) while Patroni says 200."""
    p, r = healthy
    port = HTTP + 1
    extras(p, "happac-paths-route", AGENT + 1, "--pg-conninfo", CONNINFO, "--http-listen",
           f"{hc.node_addr(p)}:{port}")

    def status(path):
        return happac_status(p, path, port=port)
    hc.wait_for("/primary 200", lambda: status("/primary")[0] == 200, 10)
    try:
        lab.reroute_pgbouncer(p, (hc.node_addr(r), hc.PG_PORT))
        hc.wait_for("/primary 503", lambda: status("/primary")[0] == 503, I + T + 2)
        assert status("/primary")[1] == b"down #role mismatch: pgbouncer reaches a replica\n"
        assert hc.patroni_status(p, "/primary") == 200
        assert status("/read-only")[0] == 200    # either role will do there
    finally:
        lab.reroute_pgbouncer(p)
    hc.wait_for("/primary 200 again", lambda: status("/primary")[0] == 200,
                I + T + hc.PGBOUNCER_LOGIN_RETRY + 2)


def metric(n, name, port=HTTP):
    text = happac_status(n, "/metrics", port=port)[1].decode()
    return int(re.search(r"^%s (\d+)" % re.escape(name), text, re.M).group(1))


REQUEST = re.compile(rb"(?:GET|HEAD|OPTIONS|POST|PUT|DELETE) /\S* HTTP/1\.[01]\r\n")


class CountingRelay:
    """A TCP relay in front of the real Patroni that counts the HTTP requests
    passing through it (request lines; keep-alive connections included): how
    many times Patroni was really asked. Threads end when the relay stops."""

    def __init__(self, addr, port, target):
        self.target, self.requests, self.stopped = target, 0, False
        self.lock = threading.Lock()
        self.srv = socket.create_server((addr, port))
        self.srv.settimeout(0.2)
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.srv.accept()
            except OSError:
                continue
            u = socket.create_connection(self.target, timeout=2)
            for a, b, count in ((c, u, True), (u, c, False)):
                t = threading.Thread(target=self._pump, args=(a, b, count), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, a, b, count):
        buf = b""
        a.settimeout(0.5)
        while not self.stopped:
            try:
                data = a.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            if count:
                buf = (buf + data)[-4096:]
                n = len(REQUEST.findall(buf))
                buf = buf[buf.rfind(b"\r\n") + 2:] if n else buf
                with self.lock:
                    self.requests += n
            try:
                b.sendall(data)
            except OSError:
                break
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def count(self):
        with self.lock:
            return self.requests

    def stop(self):
        self.stopped = True
        self.srv.close()
        for t in self.threads:
            t.join(2)


def test_ten_thousand_checks_cost_patroni_the_schedule(lab, healthy, extras):  # noqa: F811
    """10,000 checks from 16 clients on the primary's side port, happac asking
    the real Patroni through a relay that counts its requests: all answered,
    and Patroni asked once per round (the clock), not once per check."""
    primary = healthy[0]
    addr, port = hc.node_addr(primary), HTTP + 3
    relay = CountingRelay(addr, hc.PATRONI_PORT + 10, (addr, hc.PATRONI_PORT))
    try:
        extras(primary, "happac-paths-count", AGENT + 3, "-o", hc.PATRONI_PORT + 10,
               "--http-listen", f"{addr}:{port}")
        hc.wait_for("/primary 200 through the relay",
                    lambda: happac_status(primary, "/primary", port=port)[0] == 200, 10)
        rounds0 = metric(primary, "happac_probe_rounds_total", port)
        asked0 = relay.count()
        t0 = time.monotonic()
        answered, failed = hammer(
            lambda i, j: happac_status(primary, PATHS[(i + j) % len(PATHS)], METHODS[j % 3],
                                       port=port)[0],
            16, 10000 // 16, errors=(OSError, http.client.HTTPException))
        took = time.monotonic() - t0
        asked = relay.count() - asked0
        rounds = metric(primary, "happac_probe_rounds_total", port) - rounds0
    finally:
        relay.stop()
    assert not failed, failed[:5]
    assert len(answered) == 10000 and set(answered) <= {200, 503}
    # Patroni saw the schedule: one GET per round (-k primary: no leader
    # probe), rounds following the clock, not the checks -- on the primary
    # at half the interval (main_hold.c: the agent a handover waits for).
    assert 1 <= asked <= took / (I / 2) + 2, (asked, took)
    assert abs(asked - rounds) <= 1, (asked, rounds)
    lab.log(f"#17: 10000 checks from 16 clients in {took:.1f}s; Patroni asked {asked} times "
            f"({rounds} rounds)")


VIA_AGENT, VIA_HTTP = AGENT + 2, HTTP + 2
VIA, PLAIN = "via_write", "scenario_a_write"


@pytest.fixture(scope="module")
def via_happac(lab):
    """The lab's HAProxy running `recipe haproxy --scenario a --via-happac` next
    to its own scenarios, pointed at happacs with the routing probe (so a
    misrouted PgBouncer shows too). Afterwards the lab's configuration again."""
    primary = lab.wait_healthy(timeout=120)
    started = []
    try:
        for n in hc.NODES:
            started.append(Extra(lab, n, f"happac-via{n}", VIA_AGENT, "--pg-conninfo", CONNINFO,
                                 "--http-listen", f"{hc.node_addr(n)}:{VIA_HTTP}"))
        argv = [lab.happac_bin, "recipe", "haproxy", "--scenario", "a", "--via-happac",
                "--http-port", str(VIA_HTTP), "--bind", "127.0.0.1:5010", "--name", "via"]
        for n in hc.NODES:
            argv += ["--node", f"{hc.node_name(n)}={hc.node_addr(n)}"]
        cfg = lab.dir / "haproxy" / "scenario-a-via-happac.cfg"
        cfg.write_text(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
        lab.stop_haproxy()
        lab.haproxy_extra = [cfg]
        lab.start_haproxy()
        lab.wait_haproxy(primary, timeout=30)
        hc.wait_for("via-happac: the primary UP by a passing check, the others DOWN",
                    lambda: via_states(lab) == {n: "UP" if n == primary else "DOWN"
                                                for n in hc.NODES}
                    and via_row(lab, primary)["check_status"].lstrip("* ") == "L7OK", 20)
        yield primary
    finally:
        lab.stop_haproxy()
        lab.haproxy_extra = []
        lab.start_haproxy()
        for e in started:
            e.stop()
    lab.wait_haproxy(lab.wait_patroni_ready(60), timeout=30)


def via_row(lab, n):
    return lab.show_stat()[(VIA, hc.node_name(n))]


def via_states(lab):
    rows = lab.show_stat()
    return {n: rows[(VIA, hc.node_name(n))]["status"] for n in hc.NODES}


@pytest.mark.parametrize("how", ["kill", "freeze", "misroute"])
def test_haproxy_via_happac_takes_the_primary_out(lab, via_happac, how):
    """The failure matrix's PgBouncer cases on the primary, in one HAProxy:
    plain Scenario A (httpchk to Patroni) keeps the server UP throughout,
    the --via-happac backend marks it DOWN, and UP again after the fix."""
    primary = via_happac
    replica = next(n for n in hc.NODES if n != primary)
    plain_seen = []

    def seen(want):
        states = lab.server_states()[PLAIN]
        plain_seen.append(states[primary])
        s = via_states(lab)[primary]
        return s.startswith(want) or hc.Pending(s)
    t0 = time.monotonic()
    if how == "kill":
        lab.kill_pgbouncer(primary)
    elif how == "freeze":
        lab.freeze(f"pgbouncer{primary}")
    else:
        lab.reroute_pgbouncer(primary, (hc.node_addr(replica), hc.PG_PORT))
    try:
        # happac's round (I + T), then HAProxy's fall 2 at inter 1s (+ a check's time)
        hc.wait_for(f"via-happac: the primary DOWN ({how})", lambda: seen("DOWN"),
                    I + T + 2 * 1.0 + 3)
        took = time.monotonic() - t0
        assert hc.patroni_status(primary, "/primary", "OPTIONS") == 200
        want = {"kill": b"down #pgbouncer", "freeze": b"down #pgbouncer",
                "misroute": b"down #role mismatch: pgbouncer reaches a replica"}[how]
        assert happac_status(primary, "/primary", port=VIA_HTTP)[1].startswith(want)
    finally:
        if how == "kill":
            lab.start_pgbouncer(primary)
        elif how == "freeze":
            lab.thaw(f"pgbouncer{primary}")
        else:
            lab.reroute_pgbouncer(primary)
    hc.wait_for(f"via-happac: the primary UP again ({how})", lambda: seen("UP"),
                I + T + hc.PGBOUNCER_LOGIN_RETRY + 5)
    assert via_states(lab)[primary] == "UP"
    # plain Scenario A never saw the fault: Patroni still says 200
    assert plain_seen and set(plain_seen) == {"UP"}, plain_seen
    lab.log(f"#17 via-happac {how}: DOWN after {took:.1f}s; plain Scenario A UP throughout")
