"""PgBouncer maintenance under HAProxy scenario B (issue 14): a PAUSE of the
routed database on the primary's PgBouncer must never take the server DOWN.

The primary's happac is restarted in routing mode with
--pgbouncer-admin-conninfo and a short --pause-grace; its PgBouncer is
paused for 10 s: `PAUSE postgres` on PgBouncer 1.18 (debian12, which has no
SHOW STATE), a global `PAUSE` on 1.19+ (debian13: seen through SHOW STATE).
Throughout, happac never says down or maint and HAProxy never
marks the server DOWN or MAINT; within the grace it stays UP; a client that
connects through HAProxy during the pause gets its answer after RESUME.

SUSPEND (both stacks) holds the line too: new logins wait in PgBouncer's
listen queue, so happac sees it through its console connection kept from
the round before (SHOW STATE on 1.19+; on 1.18: the kept connection
answers, a new login does not). SIGTERM on 1.23+ is SHUTDOWN
WAIT_FOR_CLIENTS: `up drain #pgbouncer shutting down` while a client is
connected, then down, connection refused, once PgBouncer has exited.
Two PgBouncers on one port (so_reuseport, each with its own
unix_socket_dir), watched by a happac of their own through
--pgbouncer-socket-dir: freezing one makes the verdict name it.
"""

import os
import signal
import socket
import threading
import time
from contextlib import closing

import psycopg2
import pwd
import pytest

import happac_cluster as hc

GRACE = 6.0
PAUSE_FOR = 10.0


@pytest.fixture
def healthy(lab):
    return lab.wait_healthy(timeout=120)


def console(n, command):
    with closing(psycopg2.connect(host=hc.node_addr(n), port=hc.PGBOUNCER_PORT,
                                  dbname="pgbouncer", user="pgbouncer",
                                  connect_timeout=5)) as conn:
        conn.autocommit = True
        conn.cursor().execute(command)


@pytest.fixture
def admin_happac(lab, healthy):
    p = lab.primary()
    lab.happac_extra[p] = ["--pg-conninfo", "dbname=postgres user=postgres",
                           "--pgbouncer-admin-conninfo", "user=pgbouncer",
                           "--pause-grace", "%ds" % GRACE]
    restart_and_wait(lab, p)
    yield p
    try:
        console(p, pause_commands(lab)[1])
    except psycopg2.Error:
        pass  # not paused any more
    # HAProxy must hear `ready` (a drain happac said) before happac restarts;
    # p may not be the primary any more (a switchover during the pause).
    lab.wait_healthy(timeout=120)
    lab.happac_extra.pop(p, None)
    restart_and_wait(lab, p)


def restart_and_wait(lab, p):
    """Restart p's happac and wait until it answers: HAProxy may still show the old
    one's UP, and a happac stopped before it has its SIGTERM handler (the lab's
    teardown right after this) dies of the signal (exit -15)."""
    lab.restart_happac(p)
    lab.wait_healthy(timeout=120)


def pause_commands(lab):
    """(pause, resume): a global PAUSE where SHOW STATE can show it."""
    if lab.stack.name == "debian12":
        return "PAUSE postgres", "RESUME postgres"
    return "PAUSE", "RESUME"


def test_pause_keeps_server_up_then_drain(lab, admin_happac):
    p = admin_happac
    pause, resume = pause_commands(lab)
    answer = {}

    def client():
        t0 = time.monotonic()
        try:
            ask(t0)
        except psycopg2.Error as e:
            answer["error"] = "%s after %.1fs" % (e, time.monotonic() - t0)

    def ask(t0):
        with closing(psycopg2.connect(host="127.0.0.1", port=hc.PORT_B, dbname="postgres",
                                      user="postgres", connect_timeout=30)) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT 7")
                answer["value"] = cur.fetchone()[0]
                answer["after"] = time.monotonic() - t0

    console(p, pause)
    paused_at = time.monotonic()
    t = threading.Thread(target=client, daemon=True)
    t.start()
    replies, states = [], []
    resumed = False
    while time.monotonic() - paused_at < PAUSE_FOR + 3.0:
        elapsed = time.monotonic() - paused_at
        if elapsed >= PAUSE_FOR and not resumed:
            assert "value" not in answer, "the pause did not hold the client"
            console(p, resume)
            resumed = True
        raw, err = hc.agent_reply(p)
        r = raw.decode("ascii", "replace") if raw else str(err)
        st = lab.server_states()["scenario_b_write"][p]
        replies.append((round(elapsed, 1), r))
        states.append((round(elapsed, 1), st))
        time.sleep(0.2)
    t.join(15)
    log = lab.tail("happac%d" % p, 30)
    assert all(not r.startswith("down") and "maint" not in r for _, r in replies), (replies, log)
    assert all(s in ("UP", "DRAIN") for _, s in states), states
    # Within the grace (less a round and a check): UP and "up".
    early = GRACE - hc.HAPPAC_INTERVAL - hc.HAPPAC_TIMEOUT - 1.0
    assert all(s == "UP" for e, s in states if e < early), states
    assert any(r.startswith("up drain #pgbouncer paused for 6s") for _, r in replies), replies
    assert any(s == "DRAIN" for _, s in states), states
    assert answer.get("value") == 7, (answer, replies, states, log)
    assert answer["after"] >= PAUSE_FOR - 1.0
    lab.wait_haproxy(p)


def test_switchover_during_pause_moves_the_line(lab, admin_happac):
    """PAUSE, switchover, RESUME -- the usual way to switch without dropping
    clients. The pause keeps the line only against PgBouncer's own failures:
    once Patroni has demoted the paused primary its happac says down, and no
    sample ever sees two agents up."""
    p = admin_happac
    pause, resume = pause_commands(lab)
    c = next(n for n in hc.NODES if n != p)
    console(p, pause)
    try:
        hc.wait_for("happac sees the pause",
                    lambda: "paused" in lab.tail("happac%d" % p, 30).split(
                        "pgbouncer admin:")[-1], 10)
        # The paused primary's line before the switchover: still up.
        assert hc.reply_word(hc.agent_reply(p)[0]) == "up", lab.tail("happac%d" % p, 30)
        lab.switchover(p, c)
        samples = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30.0:
            lines = {n: hc.agent_reply(n, timeout=0.5)[0] for n in hc.NODES}
            samples.append((round(time.monotonic() - t0, 2), lines))
            if hc.reply_word(lines[p]) == "down" and hc.reply_word(lines[c]) == "up":
                break
            time.sleep(0.05)
        log = lab.tail("happac%d" % p, 40)
        ups = [(t, [n for n, r in lines.items() if hc.reply_word(r) == "up"])
               for t, lines in samples]
        assert all(len(u) <= 1 for _, u in ups), (ups, log)
        assert hc.reply_word(samples[-1][1][p]) == "down", (samples[-3:], log)
        assert hc.reply_word(samples[-1][1][c]) == "up", (samples[-3:], log)
    finally:
        console(p, resume)
    lab.wait_healthy(timeout=120)


def watch(lab, p, seconds, stop=None):
    """[(t, agent reply, scenario B state of node p)] every 0.2 s for seconds
    (or until stop(reply) is true)."""
    seen = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        raw, err = hc.agent_reply(p)
        r = raw.decode("ascii", "replace") if raw else str(err)
        seen.append((round(time.monotonic() - t0, 1), r,
                     lab.server_states()["scenario_b_write"][p]))
        if stop and stop(r):
            break
        time.sleep(0.2)
    return seen


def test_suspend_keeps_the_line(lab, admin_happac):
    p = admin_happac
    with closing(psycopg2.connect(host=hc.node_addr(p), port=hc.PGBOUNCER_PORT,
                                  dbname="pgbouncer", user="pgbouncer",
                                  connect_timeout=5)) as conn:
        conn.autocommit = True
        conn.cursor().execute("SUSPEND")
        try:
            # Shorter than the grace: the line must stay "up" (HAProxy: UP).
            seen = watch(lab, p, GRACE - 2.0)
            log = lab.tail("happac%d" % p, 30)
        finally:
            # A new console login would wait: RESUME on this connection.
            conn.cursor().execute("RESUME")
    assert all(r.startswith("up") and "drain" not in r for _, r, _ in seen), (seen, log)
    assert all(s == "UP" for _, _, s in seen), seen
    assert "pgbouncer admin: running -> suspended" in log, log
    hc.wait_for("happac: suspended -> running",
                lambda: "suspended -> running" in lab.tail("happac%d" % p, 30), 10)
    lab.wait_haproxy(p)


@pytest.mark.needs("PgBouncer", "1.23", "SIGTERM is SHUTDOWN WAIT_FOR_CLIENTS")
def test_sigterm_drains_until_exit(lab, admin_happac):
    p = admin_happac
    name = "pgbouncer%d" % p
    client = psycopg2.connect(host=hc.node_addr(p), port=hc.PGBOUNCER_PORT, dbname="postgres",
                              user="postgres", connect_timeout=5)
    try:
        client.cursor().execute("SELECT 1")
        lab.send_signal(name, signal.SIGTERM)
        draining = watch(lab, p, 4.0)
        # The connected client finishes its work while PgBouncer shuts down.
        with client.cursor() as cur:
            cur.execute("SELECT 8")
            assert cur.fetchone()[0] == 8
        assert lab.running(name), lab.tail(name)
    finally:
        client.close()
    gone = watch(lab, p, 6.0, stop=lambda r: r.startswith("down"))
    log = lab.tail("happac%d" % p, 30)
    try:
        want = "up drain #pgbouncer shutting down\n"
        # A round (interval + timeout) to see it, then drain while the client stays.
        late = hc.HAPPAC_INTERVAL + hc.HAPPAC_TIMEOUT + 0.5
        assert all(r == want for t, r, _ in draining if t > late), (draining, log)
        assert all(not r.startswith("down") for _, r, _ in draining), (draining, log)
        # HAProxy's state is not asserted: scenario B's regular check is a TCP
        # connect to PgBouncer, which fails once the listener is closed (the
        # server goes DOWN after `fall` checks whatever the agent says).
        # The client gone, PgBouncer exits (happac lets go of its console
        # connection, the last one) and happac says it is refused.
        assert gone and gone[-1][1].startswith("down") and "refused" in gone[-1][1], (gone, log)
        hc.wait_for("PgBouncer exited", lambda: not lab.running(name), 5)
        assert "running -> shutting down" in log, log
    finally:
        if not lab.running(name):
            lab.start_pgbouncer(p, wait=True)


REUSE_PORT = 6433
REUSE_AGENT_PORT = 5556


def reuseport_ini(lab, p, d):
    addr = hc.node_addr(p)
    text = f"""[databases]
postgres = host={addr} port={hc.PG_PORT} user={hc.POSTGRES_USER}

[pgbouncer]
listen_addr = {addr}
listen_port = {REUSE_PORT}
so_reuseport = 1
unix_socket_dir = {d}
auth_type = any
admin_users = pgbouncer
pool_mode = session
pidfile = {d}/pgbouncer.pid
"""
    path = os.path.join(d, "pgbouncer.ini")
    with open(path, "w") as f:
        f.write(text)
    return path


def own_agent(addr):
    with closing(socket.create_connection((addr, REUSE_AGENT_PORT), timeout=1.0)) as c:
        data = b""
        while True:
            chunk = c.recv(256)
            if not chunk:
                return data.decode("ascii", "replace")
            data += chunk


@pytest.mark.needs("PgBouncer", "1.20", "several processes on one port with so_reuseport")
def test_two_processes_one_port_freeze_one(lab, healthy):
    p = healthy
    addr = hc.node_addr(p)
    pw = pwd.getpwnam(hc.POSTGRES_USER)
    dirs, names = [], ["pgbouncer-reuse-a", "pgbouncer-reuse-b"]
    for n in ("a", "b"):
        d = str(lab.node_dir(p) / ("pgb-" + n))
        os.makedirs(d, exist_ok=True)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        dirs.append(d)
    try:
        for name, d in zip(names, dirs):
            lab._spawn(name, ["pgbouncer", reuseport_ini(lab, p, d)])
        for d in dirs:
            hc.wait_for("PgBouncer socket in " + d, lambda d=d: psycopg2.connect(
                host=d, port=REUSE_PORT, dbname="pgbouncer", user="pgbouncer",
                connect_timeout=2).close() or True, 20)
        lab._spawn("happac-reuse", [
            lab.happac_bin, "-h", addr, "-r", REUSE_PORT, "-o", hc.PATRONI_PORT, "-k", "primary",
            "-p", REUSE_AGENT_PORT, "--listen", addr,
            "--interval", "%dms" % (hc.HAPPAC_INTERVAL * 1000),
            "--timeout", "%dms" % (hc.HAPPAC_TIMEOUT * 1000),
            "--pg-conninfo", "dbname=postgres user=postgres",
            "--pgbouncer-admin-conninfo", "user=pgbouncer",
            "--pgbouncer-socket-dir", dirs[0], "--pgbouncer-socket-dir", dirs[1]])
        hc.wait_for("happac-reuse up", lambda: own_agent(addr) == "up\n", 20)
        lab.freeze(names[1])
        t0 = time.monotonic()
        want = "down #pgbouncer@%s: timeout after %dms\n" % (dirs[1], hc.HAPPAC_TIMEOUT * 1000)
        replies = []
        while time.monotonic() - t0 < 8.0:
            replies.append((round(time.monotonic() - t0, 1), own_agent(addr)))
            if replies[-1][1] == want:
                break
            time.sleep(0.1)
        took = time.monotonic() - t0
        log = lab.tail("happac-reuse", 20)
        assert replies[-1][1] == want, (replies, log)
        # One round to notice (interval + timeout), and the agent asked within.
        assert took <= 2 * (hc.HAPPAC_INTERVAL + hc.HAPPAC_TIMEOUT) + 0.5, (took, replies)
        lab.thaw(names[1])
        hc.wait_for("happac-reuse up after the thaw", lambda: own_agent(addr) == "up\n", 20)
    finally:
        for name in ["happac-reuse"] + names:
            lab._terminate(name, timeout=5)
