"""--pgbouncer-admin-conninfo against the real PgBouncer of the fixtures
(1.18 here: no SHOW STATE, so PAUSE and DISABLE of the routed database are
what can be seen; the global PAUSE/SUSPEND needs 1.19+).

A pause must never turn into down: the line stays, and only after
--pause-grace does it say `up drain`. DISABLE says down, naming the
database. An admin console that refuses or never answers changes nothing.
"""

import socket
import threading
import time

import pytest

from agent_client import check, equals, starts, wait_reply
from procs import ADDR, AGENT_PORT, PGB_PORT

CONNINFO = "dbname=postgres user=postgres"
ADMIN = "user=pgbouncer"


def admin(command):
    """One admin-console command, as an operator types it."""
    import psycopg2
    conn = psycopg2.connect(host=ADDR, port=PGB_PORT, dbname="pgbouncer",
                            user="pgbouncer", connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(command)
    finally:
        conn.close()


@pytest.fixture
def resume():
    """RESUME/ENABLE whatever a test left paused or disabled."""
    yield
    for cmd in ("RESUME postgres", "ENABLE postgres"):
        try:
            admin(cmd)
        except Exception:  # noqa: BLE001 - not paused: PgBouncer says so
            pass


def replies_for(seconds):
    """Every distinct reply over the given time."""
    seen = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r = check(AGENT_PORT)[0]
        if r not in seen:
            seen.append(r)
        time.sleep(0.05)
    return seen


def test_pause_keeps_up_then_drains_after_grace(happac, backends, resume):
    h = happac("--pg-conninfo", CONNINFO, "--pgbouncer-admin-conninfo", ADMIN,
               "--pause-grace", "2s")
    wait_reply(AGENT_PORT, equals("up\n"), 5)
    admin("PAUSE postgres")
    # Within the grace: never down, never maint, never a timeout.
    seen = replies_for(1.5)
    assert seen == ["up\n"], seen
    reply, _ = wait_reply(AGENT_PORT, starts("up drain"), 3)
    assert reply == "up drain #pgbouncer paused for 2s\n"
    assert "pgbouncer admin: running -> database paused (postgres)" in h.log()
    admin("RESUME postgres")
    reply, _ = wait_reply(AGENT_PORT, starts("up ready"), 3)
    assert "pgbouncer admin: database paused -> running" in h.log()


def test_client_held_by_pause_gets_its_answer_after_resume(happac, backends, resume):
    import psycopg2
    happac("--pg-conninfo", CONNINFO, "--pgbouncer-admin-conninfo", ADMIN)
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
    seen = replies_for(2.0)
    assert seen == ["up\n"], seen
    assert t.is_alive() and "answer" not in result, "the pause did not hold the client"
    admin("RESUME postgres")
    t.join(10)
    assert result.get("answer") == 42
    assert check(AGENT_PORT)[0] == "up\n"


def test_disable_says_down_enable_up(happac, backends, resume):
    happac("--pg-conninfo", CONNINFO, "--pgbouncer-admin-conninfo", ADMIN)
    admin("DISABLE postgres")
    wait_reply(AGENT_PORT, equals("down #pgbouncer: database postgres disabled\n"), 3)
    admin("ENABLE postgres")
    wait_reply(AGENT_PORT, equals("up\n"), 3)


def test_kill_db_is_not_a_pause(happac, backends, resume):
    """KILL db: PgBouncer drops the server connections and pauses the
    database until RESUME; happac keeps the line like any pause."""
    h = happac("--pg-conninfo", CONNINFO, "--pgbouncer-admin-conninfo", ADMIN)
    admin("KILL postgres")
    seen = replies_for(1.5)
    assert seen == ["up\n"], seen
    assert "-> database paused (postgres)" in h.log()
    admin("RESUME postgres")
    admin("RECONNECT postgres")
    assert replies_for(1.0) == ["up\n"]


def test_status_and_metrics_show_the_pause(happac, backends, resume):
    import json
    import urllib.request
    happac("--pg-conninfo", CONNINFO, "--pgbouncer-admin-conninfo", ADMIN,
           "--http-listen", "%s:25521" % ADDR)
    admin("PAUSE postgres")
    wait_reply(AGENT_PORT, equals("up\n"), 2)
    time.sleep(0.6)
    st = json.load(urllib.request.urlopen("http://%s:25521/status" % ADDR, timeout=5))
    assert st["pgbouncer_admin"]["state"] == "database paused"
    assert st["pgbouncer_admin"]["paused_seconds"] > 0
    m = urllib.request.urlopen("http://%s:25521/metrics" % ADDR, timeout=5).read().decode()
    assert "happac_pgbouncer_paused 1" in m


def test_wrong_user_falls_back(happac, backends):
    """auth_type=any lets any user in as stats user; a database other than
    the console cannot be asked for (dbname is forced), so the failing login
    here is a user PgBouncer rejects by name."""
    h = happac("--pg-conninfo", CONNINFO,
               "--pgbouncer-admin-conninfo", "user=pgbouncer port=%d" % (PGB_PORT + 50))
    assert replies_for(0.6) == ["up\n"]
    assert "pgbouncer admin: state unknown (refused" in h.log()
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
                   "--pgbouncer-admin-conninfo", "user=pgbouncer port=%d" % port)
        assert replies_for(1.0) == ["up\n"]
        assert "pgbouncer admin: state unknown (timeout" in h.log()
    finally:
        hang_standin.close()
