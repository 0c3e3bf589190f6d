"""Beyond the predecessor, against the real cluster: the routing probe through
PgBouncer, replica lag weights, agent-send dispatch, and operator overrides
that HAProxy really applies and that survive a restart of happac.

Runs after the failure matrix, on the same lab (it starts from a healthy
cluster, whichever node is primary by then). Extra happacs run as the
postgres user on the node's own address, on ports 5565-5567.
"""

import os
import subprocess
import time

import psycopg2
import pytest

import happac_cluster as hc
from agentcheck import talk  # tests/lib

I, T = hc.HAPPAC_INTERVAL, hc.HAPPAC_TIMEOUT
DETECT = I + T + 0.35          # a change reaches the reply (+ one poll and sweep)
CONNINFO = "dbname=postgres user=postgres"


def ask(n, port, send=None, timeout=2.0):
    return talk((hc.node_addr(n), port), send, timeout)[0].decode()


def wait_reply(n, port, pred, timeout, send=None, what=""):
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        try:
            r = ask(n, port, send)
        except OSError as e:
            r = repr(e)
        if pred(r):
            return r
        if not seen or seen[-1] != r:
            seen.append(r)
        if time.monotonic() > deadline:
            raise AssertionError(f"node{n}:{port}: no reply {what} within {timeout:.1f}s; seen {seen}")
        time.sleep(0.1)


class Extra:
    """One more happac on a node, for a test; stopped by pid afterwards."""

    def __init__(self, lab, n, name, port, *args):
        self.lab, self.name, self.n, self.port = lab, name, n, port
        addr = hc.node_addr(n)
        lab._spawn(name, [lab.happac_bin, "-h", addr, "-r", hc.PGBOUNCER_PORT, "-o", hc.PATRONI_PORT,
                          "-p", port, "--listen", addr,
                          "--interval", f"{int(I * 1000)}ms", "--timeout", f"{int(T * 1000)}ms"]
                   + list(args))
        wait_reply(n, port, lambda r: r.startswith(("up", "down")), 10, what="at all")

    def stop(self):
        rc = self.lab._terminate(self.name, timeout=5)
        return rc


@pytest.fixture
def extras(lab):
    started = []

    def start(n, name, port, *args):
        e = Extra(lab, n, name, port, *args)
        started.append(e)
        return e
    yield start
    for e in started:
        e.stop()


def _routes(n):
    """A real query through node n's PgBouncer works."""
    try:
        conn = psycopg2.connect(host=hc.node_addr(n), port=hc.PGBOUNCER_PORT, dbname="postgres",
                                user="postgres", connect_timeout=2)
    except psycopg2.Error:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            return True
    except psycopg2.Error:
        return False
    finally:
        conn.close()


@pytest.fixture
def healthy(lab):
    """A healthy cluster whose PgBouncers really route: after the failure
    matrix a PgBouncer may still refuse logins for server_login_retry."""
    primary = lab.wait_healthy(timeout=120)
    for n in hc.NODES:
        hc.wait_for(f"a query through node{n}'s PgBouncer", lambda n=n: _routes(n),
                    hc.PGBOUNCER_LOGIN_RETRY + 10)
    replica = next(n for n in hc.NODES if n != primary)
    return primary, replica


def test_routing_probe_sees_pgbouncer_reach_a_replica(lab, healthy, extras):
    """PgBouncer on the primary reloaded to route to a replica (or to nothing)
    while Patroni still says 200: the predecessor's ping says up, the
    routing probe says down, with the reason."""
    p, r = healthy
    extras(p, "happac-route", 5565, "--pg-conninfo", CONNINFO)
    assert ask(p, 5565) == "up\n"
    try:
        lab.reroute_pgbouncer(p, (hc.node_addr(r), hc.PG_PORT))
        t0 = time.monotonic()
        reply = wait_reply(p, 5565, lambda x: x.startswith("down"), DETECT + 1, what="down")
        assert reply == "down #role mismatch: pgbouncer reaches a replica\n", reply
        assert time.monotonic() - t0 <= DETECT + 1
        # the ping-only agent HAProxy uses in the lab cannot see it
        assert ask(p, hc.AGENT_PORT) == "up\n"
        print(f"role mismatch seen after {time.monotonic() - t0:.2f}s")

        lab.reroute_pgbouncer(p, (hc.node_addr(p), 5999))  # nothing listens there
        reply = wait_reply(p, 5565, lambda x: x.startswith("down #pgbouncer"), DETECT + 1,
                           what="down #pgbouncer")
        assert ("timeout" in reply or "query failed" in reply or "login failed" in reply), reply
        assert ask(p, hc.AGENT_PORT) == "up\n"
    finally:
        lab.reroute_pgbouncer(p)
    # PgBouncer refuses logins for server_login_retry after a failed one
    wait_reply(p, 5565, lambda x: x == "up\n", DETECT + hc.PGBOUNCER_LOGIN_RETRY + 2, what="up")


def _sql(n, sql, autocommit=True):
    conn = psycopg2.connect(host=hc.node_addr(n), port=hc.PG_PORT, dbname="postgres",
                            user="postgres", connect_timeout=5)
    conn.autocommit = autocommit
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def test_replica_lag_weights_and_cut(lab, healthy, extras):
    """Replay held up on a real replica while the primary writes: the weight
    falls, the replica is cut at lag-cut, and comes back at lag-full.

    Replay is held by a recovery conflict (pg_wal_replay_pause() is undone by
    Patroni within a second): a transaction on the replica holds a lock that
    the primary's TRUNCATE needs, and replay waits for it for up to
    max_standby_streaming_delay (30 s by default) while WAL keeps arriving."""
    p, r = healthy
    conf = lab.node_dir(r) / "lag.conf"   # happac runs as postgres: its own directory
    # lag-hold 0: the cut at once, as this test watches the weights (the hold-down:
    # test_replica_verdicts.py)
    conf.write_text("[profile replica]\nrule = replica\nlag-full = 1MB\nlag-cut = 8MB\n"
                    "lag-hold = 0\n")
    os.chmod(conf, 0o644)
    extras(r, "happac-lag", 5566, "-k", "replica", "-c", conf, "--pg-conninfo", CONNINFO)
    wait_reply(r, 5566, lambda x: x == "up 100%\n", DETECT + 1, what="up 100%")
    _sql(p, "DROP TABLE IF EXISTS happac_lag; DROP TABLE IF EXISTS happac_lock; "
            "CREATE TABLE happac_lock (x int)")
    hc.wait_for("happac_lock replicated",
                lambda: _sql(r, "SELECT to_regclass('happac_lock') IS NOT NULL")[0][0], 10)
    holder = psycopg2.connect(host=hc.node_addr(r), port=hc.PG_PORT, dbname="postgres",
                              user="postgres", connect_timeout=5)
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT * FROM happac_lock")   # AccessShareLock until rollback
        _sql(p, "TRUNCATE happac_lock")                  # replay of this waits for it
        _sql(p, "CREATE TABLE happac_lag (g int, pad text)")
        # WAL behind it in steps of ~2.7 MB, each seen by happac before the next: one
        # statement of 25 MB outruns the probe on a fast stack (PostgreSQL 17), which
        # then goes from 100% straight to the cut.
        reply = ask(r, 5566)
        weights = [int(w[:-1]) for w in reply.split() if w.endswith("%")]
        for _ in range(10):
            if reply.startswith("down"):
                break
            _sql(p, "INSERT INTO happac_lag SELECT g, repeat('x', 1000) "
                    "FROM generate_series(1, 2500) g")
            prev, deadline = reply, time.monotonic() + DETECT + 1
            while reply == prev and time.monotonic() < deadline:
                time.sleep(0.1)
                reply = ask(r, 5566)
                weights += [int(w[:-1]) for w in reply.split() if w.endswith("%")]
        assert reply.startswith("down #replication lag "), (reply, weights)
        assert reply.endswith("(cut at 8MB)\n"), reply
        assert weights and weights[0] == 100, weights
        assert any(1 <= w < 100 for w in weights), f"no weight between full and cut: {weights}"
        assert weights == sorted(weights, reverse=True), weights
    finally:
        holder.rollback()
        holder.close()
    wait_reply(r, 5566, lambda x: x == "up 100%\n", 30, what="back at up 100%")
    _sql(p, "DROP TABLE IF EXISTS happac_lag; DROP TABLE IF EXISTS happac_lock")
    # Patroni's own replica health (no ?lag=) stayed 200: the weights are happac's
    assert hc.patroni_status(r, "/replica") == 200


def test_agent_send_dispatch(lab, healthy, extras):
    """One port, several profiles, chosen by the checker's first line."""
    p, r = healthy
    extras(r, "happac-send-r", 5567, "--profile", "replica", "--profile", "read-only")
    assert ask(r, 5567) == "down #patroni /primary: 503\n"
    assert ask(r, 5567, b"replica\n") == "up\n"
    assert ask(r, 5567, b"read-only\n") == "up\n"
    extras(p, "happac-send-p", 5567, "--profile", "replica", "--profile", "read-only")
    assert ask(p, 5567) == "up\n"
    assert ask(p, 5567, b"replica\n") == "down #patroni: not replica (primary, running)\n"
    assert ask(p, 5567, b"read-only\n") == "up\n"


def _ctl(lab, n, *args):
    r = subprocess.run([str(lab.happac_bin), "ctl", "--socket", str(lab.node_dir(n) / "happac.sock")]
                       + list(args), capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _b_status(lab, n):
    return lab.server_states()["scenario_b_write"][n]


def test_operator_drain_reaches_haproxy_and_survives_restart(lab, healthy):
    p, _ = healthy
    try:
        assert _ctl(lab, p, "drain").startswith("ok drain")
        assert ask(p, hc.AGENT_PORT) == "up drain\n"
        hc.wait_for("HAProxy shows the primary DRAIN", lambda: _b_status(lab, p) == "DRAIN",
                    I + 2 * hc.haproxy_check_settings()["scenario_b_write"]["agent_inter"] + 1)
        lab.restart_happac(p)
        wait_reply(p, hc.AGENT_PORT, lambda x: x == "up drain\n", 10, what="still drained")
        assert _b_status(lab, p) == "DRAIN"
    finally:
        _ctl(lab, p, "ready")
    assert ask(p, hc.AGENT_PORT) == "up ready\n"
    hc.wait_for("HAProxy shows the primary UP again", lambda: _b_status(lab, p) == "UP", 5)
    log = (lab.dir / "logs" / f"happac{p}.log").read_text()
    assert "override: drain set by uid" in log


def _from(src, n, port):
    # lenient: a refused client is reset at accept; what arrived (nothing) is the answer
    return talk((hc.node_addr(n), port), None, 3, src=src, lenient=True)[0]


def test_allow_list(lab, healthy, extras):
    """Only the HAProxy hosts get a reply: others are closed at accept."""
    p, _ = healthy
    # 127.0.0.1: where the test's own readiness check comes from
    extras(p, "happac-allow", 5565, "--allow", "127.0.0.5/32", "--allow", "127.0.0.1/32")
    assert _from("127.0.0.5", p, 5565) == b"up\n"
    for _ in range(10):
        assert _from("127.0.0.6", p, 5565) == b""
    assert _from("127.0.0.5", p, 5565) == b"up\n"
