"""Process and readiness helpers for the operations tests (tests/ops/).

Every child runs in its own session (process group) and is registered here:
fixture finalizers, an atexit hook and a SIGTERM to pytest stop it by pid
(then its group with SIGKILL), also when a test fails.

Readiness is always a signal (a datagram, a line from the agent, a port that
accepts), polled against a deadline: never a fixed sleep. The only waits of a
fixed length are the few that prove something does NOT happen; they say so.

Addresses: 127.0.0.41 .. 127.0.0.49 only (other ranges belong to concurrent
test suites). Ports are picked free on those addresses per test.
"""

import os

import agentcheck
import harness
from harness import REPO, free_port, happac_bin, poll_until  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))

# One address per concern keeps the tests independent of each other.
ADDR_NOTIFY = "127.0.0.41"
ADDR_CHECK = "127.0.0.42"
ADDR_CONSUL = "127.0.0.43"
ADDR_REFUSED = "127.0.0.44"   # nothing listens here
ADDR_SILENT = "127.0.0.45"    # a server that accepts and never answers
ADDR_SCRIPTED = "127.0.0.46"  # a scripted agent stand-in for the word parser


def agent_query(addr, port, timeout=2.0):
    """One agent check; the reply bytes, or None when unreachable."""
    return agentcheck.try_query(port, addr, timeout)


def clean_env(**extra):
    """The environment for a child (harness.clean_env), with
    HAPPAC_RUN_AS_ROOT when the suite runs as root."""
    return harness.clean_env(extra, run_as_root=True)


class Happac(harness.Proc):
    """bin/happac against the stand-ins, listening on addr:port."""

    def __init__(self, log_path, addr, port, patroni_port, pg_port,
                 endpoint="primary", extra=(), env=None, argv_prefix=()):
        self.addr = addr
        self.port = port
        argv = list(argv_prefix) + [
            happac_bin(), "-h", addr, "-o", str(patroni_port), "-r", str(pg_port),
            "-k", endpoint, "-p", str(port), "--listen", addr,
            "--interval", "100ms", "--timeout", "500ms"] + list(extra)
        # The signal goes to the leader: an argv_prefix wrapper must see it.
        super().__init__("happac", argv, log_path, env=env if env is not None else clean_env(),
                         signal_group=False)

    def query(self):
        return agent_query(self.addr, self.port)

    def wait_line(self, prefix, timeout=15.0):
        """Wait until the agent answers a line starting with prefix; return it."""
        return agentcheck.wait_prefix(
            self.port, self.addr, prefix, timeout, alive=self.alive,
            log=lambda: "exit status %s\n%s" % (self.popen.returncode, self.log()))
