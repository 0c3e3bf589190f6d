"""--pgbouncer-admin-conninfo against the real PgBouncer of the fixtures
(1.18 here: no SHOW STATE, so PAUSE and DISABLE of the routed database are
what can be seen; the global PAUSE/SUSPEND needs 1.19+).

A pause must never turn into down: the line stays, and only after
--pause-grace does it say `up drain`. DISABLE says down, naming the
database. An admin console that refuses or never answers changes nothing.
"""

import signal
import socket
import threading
import time
from contextlib import closing

import pytest

from agent_client import check, equals, starts, wait_reply
from procs import ADDR, AGENT_PORT, PGB_PORT
from test_override_state import lines_for
from test_routing import ALT_PGB_PORT, alt_pgbouncer  # noqa: F401 - a fixture

CONNINFO = "dbname=postgres user=postgres"
ADMIN = "user=pgbouncer"
# After KILL or RECONNECT the pool is empty: the next login waits for a new
# PostgreSQL backend, slower than the suite's usual 150ms on a busy machine.
TIMING = dict(interval="200ms", timeout="500ms")


def admin(command, port=PGB_PORT):
    """One admin-console command, as an operator types it; the rows."""
    import psycopg2
    with closing(psycopg2.connect(host=ADDR, port=port, dbname="pgbouncer",
                                  user="pgbouncer", connect_timeout=5)) as conn:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute(command)
        return cur.fetchall() if cur.description else None


def happac_waiting(port=PGB_PORT):
    """happac's logins that PgBouncer holds (SHOW CLIENTS, state waiting)."""
    return [r for r in admin("SHOW CLIENTS", port)
            if r[3] == "waiting" and "happac" in r]


@pytest.fixture
def resume():
    """RESUME/ENABLE whatever a test left paused or disabled."""
    yield
    for cmd in ("RESUME postgres", "ENABLE postgres"):
        try:
            admin(cmd)
        except Exception:  # noqa: BLE001 - not paused: PgBouncer says so
            pass


def test_pause_keeps_up_then_drains_after_grace(happac, backends, resume):
    h = happac("--pg-conninfo", CONNINFO, "--pgbouncer-admin-conninfo", ADMIN,
               "--pause-grace", "2s", **TIMING)
    wait_reply(AGENT_PORT, equals("up\n"), 5)
    admin("PAUSE postgres")
    # Within the grace: never down, never maint, never a timeout.
    seen = lines_for(1.5)
    assert seen == ["up\n"], seen
    # The routing probe is not sent into the paused database.
    assert happac_waiting() == []
    reply, _ = wait_reply(AGENT_PORT, starts("up drain"), 3)
    assert reply == "up drain #pgbouncer paused for 2s\n"
    assert "pgbouncer admin: running -> database paused (postgres)" in h.log()
    admin("RESUME postgres")
    reply, _ = wait_reply(AGENT_PORT, starts("up ready"), 3)
    assert "pgbouncer admin: database paused -> running" in h.log()


def test_client_held_by_pause_gets_its_answer_after_resume(happac, backends, resume):
    import psycopg2
    happac("--pg-conninfo", CONNINFO, "--pgbouncer-admin-conninfo", ADMIN, **TIMING)
    admin("PAUSE postgres")
    result = {}

    def client():
        conn = psycopg2.connect(host=ADDR, port=PGB_PORT, dbname="postgres",
                                user="postgres", connect_timeout=20)
        with conn.cursor() as cur:
            cur.execute("SELECT 42")
            result["answer"] = cur.fetchone()[0]
        conn.close()
    t = threading.Thread(target=client, daemon=True)
    t.start()
    seen = lines_for(2.0)
    assert seen == ["up\n"], seen
    assert t.is_alive() and "answer" not in result, "the pause did not hold the client"
    admin("RESUME postgres")
    t.join(10)
    assert result.get("answer") == 42
    assert check(AGENT_PORT)[0] == "up\n"


def test_disable_says_down_enable_up(happac, backends, resume):
    happac("--pg-conninfo", CONNINFO, "--pgbouncer-admin-conninfo", ADMIN, **TIMING)
    admin("DISABLE postgres")
    wait_reply(AGENT_PORT, equals("down #pgbouncer: database postgres disabled\n"), 3)
    admin("ENABLE postgres")
    wait_reply(AGENT_PORT, equals("up\n"), 3)


def test_kill_db_holds_like_a_pause(happac, backends, alt_pgbouncer):
    """KILL db drops the database's clients and servers and pauses it until
    RESUME (SHOW DATABASES paused=1): happac keeps the line like any pause
    and sends no login there. On a private PgBouncer: 1.18 leaves the pool
    stuck after RESUME when a login gave up while it was KILLed, which would
    wedge the shared one for the other tests."""
    h = happac("--pg-conninfo", CONNINFO, "--pgbouncer-admin-conninfo", ADMIN,
               pg_port=ALT_PGB_PORT, **TIMING)
    wait_reply(AGENT_PORT, equals("up\n"), 5)
    admin("KILL postgres", ALT_PGB_PORT)
    seen = lines_for(1.5)
    assert seen == ["up\n"], seen
    assert happac_waiting(ALT_PGB_PORT) == []
    assert "-> database paused (postgres)" in h.log()
    admin("RESUME postgres", ALT_PGB_PORT)
    admin("RECONNECT postgres", ALT_PGB_PORT)
    # RECONNECT is not a state: the routing probe sees a working pool.
    assert lines_for(1.5) == ["up\n"]
    assert "database paused -> running" in h.log()


def test_suspend_holds_the_line(happac, backends, alt_pgbouncer):
    """SUSPEND: PgBouncer stops accepting; a new login (admin ones too)
    waits in the listen queue. 1.18 has no SHOW STATE: happac's console
    connection, kept open from the round before, still answers while a new
    one does not -> suspended: the line stays, no login counts as failed.
    On a private PgBouncer (a suspended shared one would stall the others)."""
    import psycopg2
    h = happac("--pg-conninfo", CONNINFO, "--pgbouncer-admin-conninfo", ADMIN,
               pg_port=ALT_PGB_PORT, **TIMING)
    wait_reply(AGENT_PORT, equals("up\n"), 5)
    with closing(psycopg2.connect(host=ADDR, port=ALT_PGB_PORT, dbname="pgbouncer",
                                  user="pgbouncer", connect_timeout=5)) as conn:
        conn.autocommit = True
        conn.cursor().execute("SUSPEND")
        try:
            seen = lines_for(2.0)
            log = h.log()
        finally:
            conn.cursor().execute("RESUME")
    assert seen == ["up\n"], (seen, log)
    assert "pgbouncer admin: running -> suspended" in log
    wait_reply(AGENT_PORT, equals("up\n"), 3)
    end = time.monotonic() + 3
    while "suspended -> running" not in h.log() and time.monotonic() < end:
        time.sleep(0.1)
    assert "suspended -> running" in h.log()
    assert lines_for(1.0) == ["up\n"]


def test_status_and_metrics_show_the_pause(happac, backends, resume):
    import json
    import urllib.request
    happac("--pg-conninfo", CONNINFO, "--pgbouncer-admin-conninfo", ADMIN,
           "--http-listen", "%s:25521" % ADDR, **TIMING)
    admin("PAUSE postgres")
    wait_reply(AGENT_PORT, equals("up\n"), 2)
    time.sleep(0.6)
    st = json.load(urllib.request.urlopen("http://%s:25521/status" % ADDR, timeout=5))
    assert st["pgbouncer_admin"]["state"] == "database paused"
    assert st["pgbouncer_admin"]["paused_seconds"] > 0
    m = urllib.request.urlopen("http://%s:25521/metrics" % ADDR, timeout=5).read().decode()
    assert "happac_pgbouncer_paused 1" in m


def test_refused_admin_console_falls_back(happac, backends):
    """Nothing listens where the admin conninfo points: the state is
    unknown, logged once, and the verdict is the routing probe's alone."""
    h = happac("--pg-conninfo", CONNINFO,
               "--pgbouncer-admin-conninfo", "user=pgbouncer port=%d" % (PGB_PORT + 50), **TIMING)
    assert lines_for(0.6) == ["up\n"]
    assert "pgbouncer admin: state unknown (connection refused)" in h.log()
    assert h.log().count("state unknown") == 1


def test_hanging_admin_console_falls_back_within_deadline(happac, backends):
    """A stand-in (a listener that accepts and never answers: what a hung
    PgBouncer does) for the admin console; the routing probe still goes to
    the real PgBouncer. The verdict is what it is without the option."""
    hang_standin = socket.socket()
    hang_standin.bind((ADDR, 0))
    hang_standin.listen(16)
    try:
        port = hang_standin.getsockname()[1]
        h = happac("--pg-conninfo", CONNINFO,
                   "--pgbouncer-admin-conninfo", "user=pgbouncer port=%d" % port, **TIMING)
        assert lines_for(1.0) == ["up\n"]
        assert "pgbouncer admin: state unknown (timeout" in h.log()
    finally:
        hang_standin.close()


SCRAM_PGB_PORT = 6434


@pytest.fixture
def scram_pgbouncer(workdir, _postgres):
    """A private PgBouncer whose console asks for SCRAM-SHA-256: user
    pgbouncer (admin, password "right") and app (no console rights)."""
    import os
    import pwd
    import procs
    d = os.path.join(workdir, "pgbouncer-scram")
    os.makedirs(d, exist_ok=True)
    pw = pwd.getpwnam("postgres")
    os.chown(d, pw.pw_uid, pw.pw_gid)
    with open(os.path.join(d, "users.txt"), "w") as f:
        f.write('"pgbouncer" "right"\n"app" "apppw"\n')
    ini = (procs.PGB_INI.replace("listen_port = {pgb_port}", "listen_port = %d" % SCRAM_PGB_PORT)
           .replace("auth_type = any", "auth_type = scram-sha-256\nauth_file = %s/users.txt" % d)
           .replace("stats_users = pgbouncer", "stats_users =")
           .format(addr=ADDR, pg_port=procs.PG_PORT, pgb_port=SCRAM_PGB_PORT, dir=d))
    with open(os.path.join(d, "pgbouncer.ini"), "w") as f:
        f.write(ini)
    p = procs.Proc("pgbouncer-scram", [procs.PGBOUNCER, os.path.join(d, "pgbouncer.ini")],
                   os.path.join(d, "stderr.log"), user="postgres")
    try:
        procs.poll_until(lambda: procs.port_accepts(ADDR, SCRAM_PGB_PORT), 30,
                         what="PgBouncer on %s:%d" % (ADDR, SCRAM_PGB_PORT))
        yield d
    finally:
        p.stop(sig=signal.SIGINT, timeout=10)


def passfile(d, user, password):
    import os
    path = os.path.join(d, "pgpass-%s" % user)
    with open(path, "w") as f:
        f.write("%s:%d:pgbouncer:%s:%s\n" % (ADDR, SCRAM_PGB_PORT, user, password))
    os.chmod(path, 0o600)
    return path


def test_scram_admin_login_from_passfile(happac, backends, scram_pgbouncer):
    """libpq does the SCRAM exchange; the password comes from a passfile."""
    h = happac("--pg-conninfo", CONNINFO, "--pgbouncer-admin-conninfo",
               "user=pgbouncer port=%d passfile=%s"
               % (SCRAM_PGB_PORT, passfile(scram_pgbouncer, "pgbouncer", "right")), **TIMING)
    poll = time.monotonic() + 3
    while "unknown -> running" not in h.log() and time.monotonic() < poll:
        time.sleep(0.05)
    assert "pgbouncer admin: unknown -> running" in h.log()
    assert "state unknown" not in h.log()


@pytest.mark.parametrize("user,password,why", [
    ("pgbouncer", "wrong", "SASL authentication failed"),
    ("app", "apppw", "not allowed"),
])
def test_bad_admin_login_falls_back(happac, backends, scram_pgbouncer, user, password, why):
    """A wrong password, or a user without console rights: unknown, logged
    once with PgBouncer's reason, the verdict the routing probe's alone."""
    h = happac("--pg-conninfo", CONNINFO, "--pgbouncer-admin-conninfo",
               "user=%s port=%d passfile=%s"
               % (user, SCRAM_PGB_PORT, passfile(scram_pgbouncer, user, password)), **TIMING)
    assert lines_for(1.0) == ["up\n"]
    lines = [line for line in h.log().splitlines() if "state unknown" in line]
    assert len(lines) == 1 and why in lines[0], h.log()


def test_bad_socket_dir_is_one_message(workdir):
    """--pgbouncer-socket-dir: a directory that is not there is refused with
    the command line (exit 2); one without PgBouncer's socket at start
    (exit 1). Each is one line naming the directory."""
    import os
    from procs import run_happac
    base = ["--run-as-root", "-h", ADDR, "-r", str(PGB_PORT), "-p", str(AGENT_PORT),
            "--listen", ADDR]
    missing = os.path.join(str(workdir), "no-such-dir")
    rc, _, err, _ = run_happac(base + ["--pgbouncer-socket-dir", missing])
    assert rc == 2, err
    assert err.strip() == "happac: --pgbouncer-socket-dir: '%s': No such file or directory" % missing
    empty = os.path.join(str(workdir), "empty-dir")
    os.makedirs(empty, exist_ok=True)
    rc, _, err, _ = run_happac(base + ["--pgbouncer-socket-dir", empty])
    assert rc == 1, err
    errors = [line for line in err.splitlines() if " error: " in line]
    assert errors == ["%s error: --pgbouncer-socket-dir %s: no PgBouncer socket "
                      "%s/.s.PGSQL.%d (unix_socket_dir and listen_port of a running "
                      "PgBouncer?)" % (errors[0].split(" error: ")[0], empty, empty, PGB_PORT)
                      ], err
