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


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("failure matrix: detection times and failed writes")
        for line in REPORT:
            terminalreporter.write_line(line)
