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

import atexit
import os
import signal
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHON = "/usr/bin/python3"

# One address per concern keeps the tests independent of each other.
ADDR_NOTIFY = "127.0.0.41"
ADDR_CHECK = "127.0.0.42"
ADDR_CONSUL = "127.0.0.43"
ADDR_REFUSED = "127.0.0.44"   # nothing listens here
ADDR_SILENT = "127.0.0.45"    # a server that accepts and never answers
ADDR_SCRIPTED = "127.0.0.46"  # a scripted agent stand-in for the word parser

_live = []


def happac_bin():
    return os.environ.get("HAPPAC_BIN") or os.path.join(REPO, "bin", "happac")


def poll_until(pred, timeout, step=0.01, what="condition"):
    """Call pred() until it returns something truthy; return it, or raise."""
    deadline = time.monotonic() + timeout
    while True:
        val = pred()
        if val:
            return val
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(step)


def free_port(addr):
    """A TCP port that nobody uses on addr right now (our private address)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((addr, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def agent_query(addr, port, timeout=2.0):
    """One agent check as HAProxy does it: connect, send nothing, read to EOF.
    Returns the reply bytes, or None when the agent cannot be reached."""
    try:
        with socket.create_connection((addr, port), timeout=timeout) as s:
            chunks = []
            while True:
                b = s.recv(4096)
                if not b:
                    break
                chunks.append(b)
            return b"".join(chunks)
    except OSError:
        return None


def clean_env(**extra):
    """The environment for a child: ours without systemd's or happac's own
    variables (a developer's shell or CI must not leak into a test)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HAPPAC_") and k not in (
               "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
               "LISTEN_PID")}
    if os.geteuid() == 0:
        env["HAPPAC_RUN_AS_ROOT"] = "1"  # the suite runs as root; happac refuses it otherwise
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


class Proc:
    """A child in its own process group, stdout+stderr going to a log file."""

    def __init__(self, argv, log_path, env=None):
        self.argv = list(argv)
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.popen = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.pid = self.popen.pid
        _live.append(self)

    def alive(self):
        return self.popen.poll() is None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def send_signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout):
        return self.popen.wait(timeout=timeout)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """sig to the pid, then SIGKILL to the group; returns the exit status."""
        try:
            if self.alive():
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    pass
                try:
                    self.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        finally:
            if self in _live:
                _live.remove(self)
            if not self._log.closed:
                self._log.close()
        return self.popen.returncode


def stop_all():
    for p in list(reversed(_live)):
        try:
            p.stop(timeout=5)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(stop_all)


def _sigterm(_signo, _frame):
    # Turn SIGTERM into a normal exit so that finalizers and atexit run.
    raise SystemExit(143)


if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
    signal.signal(signal.SIGTERM, _sigterm)


class Happac(Proc):
    """bin/happac against the stand-ins, listening on addr:port."""

    def __init__(self, log_path, addr, port, patroni_port, pg_port,
                 endpoint="primary", extra=(), env=None, argv_prefix=()):
        self.addr = addr
        self.port = port
        argv = list(argv_prefix) + [
            happac_bin(), "-h", addr, "-o", str(patroni_port), "-r", str(pg_port),
            "-k", endpoint, "-p", str(port), "--listen", addr,
            "--interval", "100ms", "--timeout", "500ms"] + list(extra)
        super().__init__(argv, log_path, env=env if env is not None else clean_env())

    def query(self):
        return agent_query(self.addr, self.port)

    def wait_line(self, prefix, timeout=15.0):
        """Wait until the agent answers a line starting with prefix; return it."""
        def answered():
            if not self.alive():
                raise AssertionError("happac exited with %s:\n%s" % (
                    self.popen.returncode, self.log()))
            r = self.query()
            return r.decode("ascii", "replace") if r and r.startswith(prefix.encode()) else None
        try:
            return poll_until(answered, timeout, step=0.02,
                              what="agent %s:%d to answer %r" % (self.addr, self.port, prefix))
        except TimeoutError as e:
            raise AssertionError("%s; last reply %r; log:\n%s" % (e, self.query(), self.log())) from None
