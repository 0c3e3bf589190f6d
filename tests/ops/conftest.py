"""Fixtures for happac's operations tests: systemd notify, `happac check`,
the Consul examples, the systemd unit and the man page.

happac under test is $HAPPAC_BIN or bin/happac. Its backends are the scripted
stand-ins of ops_standins.py (see there why stand-ins suffice here), on
127.0.0.41 .. 127.0.0.49. No root needed.
"""

import os
import subprocess

import pytest

import ops_procs
from ops_standins import PatroniStandin, PgBouncerStandin

# The suite runs as root; happac refuses root unless told (HAPPAC_RUN_AS_ROOT).
os.environ.setdefault("HAPPAC_RUN_AS_ROOT", "1")


@pytest.fixture(scope="session")
def happac_bin():
    path = ops_procs.happac_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("happac binary not found at %s: run `make build` or set HAPPAC_BIN" % path)
    return path


@pytest.fixture(scope="session")
def happac_help(happac_bin):
    return subprocess.run([happac_bin, "--help"], capture_output=True, text=True,
                          timeout=10, env=ops_procs.clean_env()).stdout


@pytest.fixture(scope="session")
def check_subcommand(happac_bin):
    """Skip unless main() dispatches `happac check` to check_main()."""
    r = subprocess.run([happac_bin, "check", "--help"], capture_output=True, text=True,
                       timeout=10, env=ops_procs.clean_env())
    if r.returncode != 0 or "Usage: happac check" not in r.stdout:
        pytest.skip("`happac check` is not dispatched by main() yet "
                    "(main.c: if argv[1] is \"check\" return check_main(argc - 1, argv + 1))")
    return happac_bin


@pytest.fixture(scope="session")
def http_listen(happac_help):
    """Skip unless happac has the --http-listen side port (GET /health)."""
    if "--http-listen" not in happac_help:
        pytest.skip("happac has no --http-listen yet (the HTTP /health side port)")


@pytest.fixture
def backends():
    """backends(addr, role="primary") -> (patroni, pgbouncer) stand-ins,
    stopped after the test."""
    started = []

    def start(addr, role="primary"):
        patroni = PatroniStandin(addr, role=role)
        started.append(patroni)
        pgb = PgBouncerStandin(addr)
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
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    unclean = []
    for h in reversed(started):
        rc = h.stop(timeout=5)
        log = h.log()
        # Every run must end cleanly on SIGTERM: status 0 and, under the
        # ASan+UBSan build, no sanitizer report (leaks included).
        if rc != 0 or "Sanitizer" in log or "runtime error:" in log:
            unclean.append("happac pid %d exited with %r" % (h.pid, rc))
        if failed or unclean:
            print("---- happac log %s (%s)\n%s" % (h.log_path, " ".join(h.argv), log))
    if unclean and not failed:
        pytest.fail("; ".join(unclean))


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Remember each phase's outcome, so fixtures can show logs of failed tests.
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
