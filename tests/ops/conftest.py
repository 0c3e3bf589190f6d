"""Fixtures for happac's operations tests: systemd notify, `happac check`,
the Consul examples, the systemd unit and the man page.

happac under test is $HAPPAC_BIN or bin/happac. Its backends are the scripted
stand-ins of ops_standins.py (see there why stand-ins suffice here), on
127.0.0.41 .. 127.0.0.49. No root needed.
"""

import subprocess

import pytest

import ops_procs
from harness import call_failed, stop_daemons
from ops_standins import PatroniStandin, PgBouncerStandin


@pytest.fixture(scope="session")
def happac_help(happac_bin):
    return subprocess.run([happac_bin, "--help"], capture_output=True, text=True,
                          timeout=10, env=ops_procs.clean_env()).stdout


@pytest.fixture
def backends():
    """backends(addr, role="primary") -> (patroni, pgbouncer) stand-ins,
    stopped after the test."""
    started = []

    def start(addr, role="primary"):
        patroni = PatroniStandin(addr, role=role).start()
        started.append(patroni)
        pgb = PgBouncerStandin(addr).start()
        started.append(pgb)
        return patroni, pgb

    yield start
    for s in reversed(started):
        s.stop()


@pytest.fixture
def happac(happac_bin, tmp_path, request):
    """happac(addr, patroni, pgb, ...) -> a running ops_procs.Happac; every one
    is stopped by pid after the test, and its log is shown if the test failed."""
    started = []

    def start(addr, patroni, pgb, port=None, **kw):
        port = port or ops_procs.free_port(addr)
        log = str(tmp_path / ("happac-%d.log" % (len(started) + 1)))
        h = ops_procs.Happac(log, addr, port, patroni.port, pgb.port, **kw)
        started.append(h)
        return h

    yield start
    def judge(h, rc, log, _was_alive):
        # Every run must end cleanly on SIGTERM: status 0 and, under the
        # ASan+UBSan build, no sanitizer report (leaks included).
        if rc != 0 or "Sanitizer" in log or "runtime error:" in log:
            return "happac pid %d exited with %r" % (h.pid, rc)
        return None
    stop_daemons(list(reversed(started)), call_failed(request), judge)

