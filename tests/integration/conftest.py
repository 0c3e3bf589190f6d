"""Fixtures for happac's integration tests.

Real servers: PostgreSQL 15 and PgBouncer, started as the `postgres` user on
127.0.0.21 (ports 5432 and 6432). Stand-in: patroni_standin.py on
127.0.0.21:8008 (control port 8099) for what real Patroni cannot do on demand.
happac under test listens on 127.0.0.21:5555 unless a test says otherwise.

Session-scoped servers are started once; function-scoped wrappers put them back
into a known state (PgBouncer running and not frozen, stand-in in `primary`
mode with zeroed counters) before each test and after it.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # any import mode

import procs  # noqa: E402
from agent_client import wait_answering  # noqa: E402
from harness import SANITIZER_MARKS, call_failed, running, scratch_dir, stop_daemons  # noqa: E402
from procs import ADDR, AGENT_PORT, PATRONI_PORT, PGB_PORT  # noqa: E402

@pytest.fixture(scope="session")
def workdir():
    if os.geteuid() != 0:
        pytest.exit("happac integration tests must run as root (they start "
                    "PostgreSQL and PgBouncer as the postgres user)", returncode=2)
    with scratch_dir("happac-it-") as d:
        yield d


@pytest.fixture(scope="session")
def _postgres(workdir):
    for port in (procs.PG_PORT, PGB_PORT, PATRONI_PORT, procs.CONTROL_PORT, AGENT_PORT):
        if not procs.port_free(ADDR, port):
            pytest.fail("%s:%d is already in use: a leftover from an earlier run?" % (ADDR, port))
    with running(procs.Postgres(workdir)) as pg:
        yield pg


def _query_through_pgbouncer():
    """Prove that the route client -> PgBouncer -> PostgreSQL really works."""
    import psycopg2  # Debian's python3-psycopg2, seen by /usr/bin/python3
    conn = psycopg2.connect(host=ADDR, port=PGB_PORT, dbname="postgres",
                            user="postgres", connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery()")
            return cur.fetchone()[0]
    finally:
        conn.close()


@pytest.fixture(scope="session")
def _pgbouncer(_postgres, workdir):
    bouncer = procs.PgBouncer(workdir)
    try:
        bouncer.start()
        assert _query_through_pgbouncer() is False, "PostgreSQL behind PgBouncer is not a primary"
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture
def pgbouncer(_pgbouncer):
    """The real PgBouncer, running and not frozen; thawed again at teardown."""
    _pgbouncer.ensure_running()
    yield _pgbouncer
    _pgbouncer.thaw()  # SIGCONT a PgBouncer a test left frozen


@pytest.fixture(scope="session")
def _standin(workdir):
    with running(procs.Standin(workdir)) as s:
        yield s


@pytest.fixture
def standin(_standin):
    """The Patroni stand-in on 127.0.0.21:8008 in `primary` mode, counters zeroed."""
    if _standin.proc is None or not _standin.proc.alive():
        _standin.stop()
        _standin.start()
    _standin.set("primary")
    _standin.reset()
    yield _standin
    if _standin.proc is not None and _standin.proc.alive():
        _standin.set("primary")


@pytest.fixture
def backends(pgbouncer, standin):
    """Both backends healthy: real PgBouncer (+PostgreSQL) and the stand-in."""
    return pgbouncer, standin


@pytest.fixture
def extra_standins(workdir):
    """Factory for more stand-ins on other ports (e.g. to end a refusal)."""
    started = []

    def start(port, control_port, mode="primary"):
        s = procs.Standin(workdir, port=port, control_port=control_port, mode=mode)
        started.append(s)
        return s.start()
    yield start
    for s in started:
        s.stop()


@pytest.fixture
def happac(workdir, happac_bin, request):
    """Factory: start happac; every instance is stopped (by pid) at teardown.

    By default it uses the fast test timing (--interval 200ms --timeout 150ms
    --haproxy-agent-inter 200ms: the HAProxy it stands for checks every 200ms),
    listens on 127.0.0.21:5555 and waits until the first reply arrives (the
    agent answers only after its first probe round). Pass interval=None /
    timeout=None for the daemon's defaults, args=[...] for a raw command line.
    """
    started = []

    def start(*extra, host=ADDR, patroni_port=PATRONI_PORT, pg_port=PGB_PORT,
              endpoint="primary", port=AGENT_PORT, listen=ADDR,
              interval="200ms", timeout="150ms", agent_inter="200ms", args=None,
              connect_addr=None, wait_ready=True):
        if args is None:
            args = ["-h", host, "-r", str(pg_port), "-o", str(patroni_port),
                    "-k", endpoint, "-p", str(port)]
            if listen:
                args += ["--listen", listen]
            if interval:
                args += ["--interval", interval]
            if timeout:
                args += ["--timeout", timeout]
            if agent_inter:
                args += ["--haproxy-agent-inter", agent_inter]
            args += list(extra)
        h = procs.Happac(workdir, args, connect_addr or listen or ADDR, port)
        started.append(h)
        if wait_ready:
            wait_answering(h)
        return h

    yield start
    def judge(h, rc, log, _was_alive):
        # Every happac must stop cleanly; under the ASan+UBSan build this is
        # also where leaks and undefined behaviour show up.
        if any(m in log for m in SANITIZER_MARKS):
            return "sanitizer report from happac %s:\n%s" % (" ".join(h.args), log)
        if rc not in (0, None) and h.expect_clean_exit:
            return "happac %s exited %s after SIGTERM:\n%s" % (" ".join(h.args), rc, log)
        return None
    stop_daemons(started, call_failed(request), judge)

