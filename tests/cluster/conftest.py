"""Fixtures for the cluster failure matrix: one lab per session, background samplers.

Run with Debian's pytest: `pytest-3 tests/cluster` (HAPPAC_BIN picks another build).
"""

import importlib.util
import os
import signal
import sys
import time

import pytest

# The suite runs as root; happac refuses root unless told (HAPPAC_RUN_AS_ROOT).
os.environ.setdefault("HAPPAC_RUN_AS_ROOT", "1")

# Load cluster.py under a unique module name, so it cannot collide with a helper of the
# same name elsewhere under tests/.
_spec = importlib.util.spec_from_file_location(
    "happac_cluster", os.path.join(os.path.dirname(__file__), "cluster.py"))
happac_cluster = importlib.util.module_from_spec(_spec)
sys.modules["happac_cluster"] = happac_cluster
_spec.loader.exec_module(happac_cluster)

SAMPLE_PERIOD = happac_cluster.SAMPLE_PERIOD
# Upper bound on the matrix; the samplers stop by themselves after it.
SESSION_MAX_SECONDS = 1800

REPORT = []


def _agent_sweep():
    out = {}
    for n in happac_cluster.NODES:
        t0 = time.monotonic()
        reply, err = happac_cluster.agent_reply(n, timeout=1.0)
        out[n] = (reply, err, time.monotonic() - t0)
    return out


def _patroni_sweep():
    return {n: happac_cluster.patroni_status(n, "/primary", "OPTIONS", timeout=0.5)
            for n in happac_cluster.NODES}


class Observer:
    """Session-wide samplers: every agent, every Patroni /primary, HAProxy `show stat`."""

    def __init__(self, lab):
        self.lab = lab
        Sampler = happac_cluster.Sampler
        self.agents = Sampler(_agent_sweep, SAMPLE_PERIOD, SESSION_MAX_SECONDS, "agents")
        self.patroni = Sampler(_patroni_sweep, SAMPLE_PERIOD, SESSION_MAX_SECONDS, "patroni")
        self.haproxy = Sampler(self._haproxy_sweep, SAMPLE_PERIOD, SESSION_MAX_SECONDS, "haproxy")
        self.samplers = [self.agents, self.patroni, self.haproxy]

    def _haproxy_sweep(self):
        rows = self.lab.show_stat()
        out = {}
        for be in happac_cluster.BACKENDS:
            for n in happac_cluster.NODES:
                r = rows[(be, happac_cluster.node_name(n))]
                out[(be, n)] = {
                    "status": r["status"].replace(" (agent)", ""),
                    "agent_status": r.get("agent_status", ""),
                    # HAProxy 2.6 puts the agent's "#text" in last_agt, not agent_desc:
                    # "via agent : down (<text>)".
                    "last_agt": r.get("last_agt", ""),
                    # "* L4OK": the same result, with a check in progress.
                    "check_status": r.get("check_status", "").lstrip("* "),
                    "chkdown": int(r.get("chkdown") or 0),
                }
        return out

    def start(self):
        for s in self.samplers:
            s.start()

    def stop(self):
        for s in self.samplers:
            s.stop()


@pytest.fixture(scope="session")
def lab():
    # SIGTERM (a CI timeout, a `kill`) is handled like Ctrl-C, so the teardown runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with happac_cluster.Cluster() as c:
        yield c
    # Checked after the teardown, when every happac has had its SIGTERM.
    assert not c.happac_problems, "\n\n".join(c.happac_problems)


@pytest.fixture(scope="session")
def observer(lab):
    obs = Observer(lab)
    obs.start()
    yield obs
    obs.stop()


@pytest.fixture(scope="session")
def report():
    """Lines for the terminal summary: each case's detection times and failed writes."""
    return REPORT


_STACK = None


def stack():
    """The stack under test (HAPPAC_STACK), its versions asked once."""
    global _STACK
    if _STACK is None:
        _STACK = happac_cluster.Stack()
        _STACK.versions()
    return _STACK


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs(program, version, why): runs only on a stack whose `program` "
        "(Patroni, PgBouncer, HAProxy, PostgreSQL, etcd) is at least `version`; on an older "
        "one the test is reported as skipped with `why` (make test-cluster shows it, -rs)")


def pytest_runtest_setup(item):
    for m in item.iter_markers("needs"):
        program, want, why = m.args
        have = stack().versions().get(program, "?")
        if not have[:1].isdigit():
            pytest.fail(f"cannot tell the {program} version of stack {stack().name}: {have}")
        if not stack().at_least(program, want):
            pytest.skip(f"needs {program} >= {want} ({why}); stack {stack().name} has {have}")


def pytest_report_header(config):
    """The versions this run really tests, asked from the stack's own programs."""
    try:
        return stack().banner()
    except happac_cluster.ClusterError as e:
        return f"stack: {e}"


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("failure matrix: detection times and failed writes")
        for line in REPORT:
            terminalreporter.write_line(line)
