"""The process harness every pytest suite uses (tests/lib, on sys.path from
tests/conftest.py).

Every child is started in its own session (process group) and registered
here, so that a fixture finalizer, an atexit hook or a SIGTERM to pytest can
stop it by pid, then kill its whole group. Nothing is left running, also
when a test fails. Readiness is always a signal polled against a deadline
(poll_until), never a fixed sleep.

The small differences the suites need are parameters: the user a server runs
as (PostgreSQL, PgBouncer), a preexec_fn (stress drops happac to nobody),
stdout piped (a stand-in that says `ready`), whether the stop signal goes
to the group (servers with children) or to the leader only (a wrapper such as
`systemd-run` that must see it first), and, for tests/cluster's long-lived
lab, a working directory and a start line in a log that restarts append to.
"""

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

LIB = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(LIB))
PYTHON = "/usr/bin/python3"

# Variables a child must not inherit from a developer's shell or CI: happac
# reads HAPPAC_* as options, the others are systemd's (notify, watchdog,
# socket activation, journal log format).
_FOREIGN_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                "LISTEN_PID", "JOURNAL_STREAM")

_live = []  # every Proc not yet stopped


def happac_bin():
    """The daemon under test: $HAPPAC_BIN or bin/happac."""
    return os.environ.get("HAPPAC_BIN") or os.path.join(REPO, "bin", "happac")


def clean_env(extra=None, run_as_root=False):
    """The environment for a child: ours without HAPPAC_* and systemd's
    variables, plus extra (None values dropped). run_as_root: let a happac
    started as root run (HAPPAC_RUN_AS_ROOT=1; it refuses root otherwise)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HAPPAC_") and k not in _FOREIGN_ENV}
    if run_as_root and os.geteuid() == 0:
        env["HAPPAC_RUN_AS_ROOT"] = "1"
    env.update({k: str(v) for k, v in (extra or {}).items() if v is not None})
    return env


def hammer(ask, clients, per, errors=(OSError,), join_s=300):
    """Call ask(i, j) per times from each of `clients` threads at once (i the
    client, j its call). Returns (answers, failures), failures the repr of
    each error of a kind in `errors`. Every thread is joined (join_s each)."""
    answers, failures = [], []

    def client(i):
        for j in range(per):
            try:
                answers.append(ask(i, j))
            except errors as e:
                failures.append(repr(e))
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(join_s)
    return answers, failures


def poll_until(pred, timeout, step=0.01, what="condition"):
    """Call pred() until it returns a truthy value; return it, or raise
    TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        val = pred()
        if val:
            return val
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(step)


def _family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def port_free(addr, port):
    """True if addr:port can be bound right now (nobody listens there)."""
    s = socket.socket(_family(addr), socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port(addr):
    """A TCP port that nobody uses on addr right now."""
    s = socket.socket(_family(addr), socket.SOCK_STREAM)
    try:
        s.bind((addr, 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Proc:
    """A child in its own process group; stdout and stderr to a log file
    (stdout piped when asked)."""

    def __init__(self, name, argv, log_path, env=None, user=None, stdout=None,
                 preexec_fn=None, signal_group=True, cwd=None, header=False):
        """header: write a `==== HH:MM:SS start: argv` line to the log first
        (a log that several runs of one server append to)."""
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.signal_group = signal_group
        self.frozen = False
        kwargs = {"cwd": cwd} if cwd else {}
        if user:
            pw = pwd.getpwnam(user)
            # Popen(user=...) execs the server itself with that uid, so
            # self.pid is the server's pid (SIGSTOP/SIGKILL reach it), unlike
            # `runuser`, which stays as a parent process.
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                          cwd=cwd or (pw.pw_dir if os.path.isdir(pw.pw_dir) else "/"))
            env = dict(env or os.environ, HOME=pw.pw_dir, USER=user, LOGNAME=user)
        self._log = open(log_path, "ab")
        if header:
            self._log.write(("==== %s start: %s\n" % (time.strftime("%H:%M:%S"),
                                                      " ".join(self.argv))).encode())
            self._log.flush()
        self.popen = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else self._log,
            stderr=self._log, env=env, start_new_session=True,
            preexec_fn=preexec_fn, **kwargs)
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

    def freeze(self):
        self.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self):
        if self.frozen:
            self.send_signal(signal.SIGCONT)
            self.frozen = False

    def wait(self, timeout):
        return self.popen.wait(timeout=timeout)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """sig (to the group, or to the leader when signal_group is off),
        SIGKILL to the group after timeout; returns the exit status."""
        try:
            if self.alive():
                try:
                    if self.frozen:
                        os.killpg(self.pid, signal.SIGCONT)
                        self.frozen = False
                    if self.signal_group:
                        os.killpg(self.pid, sig)
                    else:
                        os.kill(self.pid, sig)
                except ProcessLookupError:
                    pass
                try:
                    self.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            # Children that outlived the leader (e.g. postgres backends) die here.
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
    """Stop every child still running, newest first (also at exit)."""
    for p in list(reversed(_live)):
        try:
            p.stop(timeout=5)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(stop_all)


def _sigterm(_signo, _frame):
    # Treat SIGTERM like Ctrl-C: pytest stops the run and still runs fixture
    # finalizers, then atexit runs stop_all().
    raise KeyboardInterrupt("SIGTERM")


if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
    signal.signal(signal.SIGTERM, _sigterm)


def call_failed(request):
    """True when the test that owns fixture `request` failed in its call
    phase (tests/conftest.py records each phase's report on the item)."""
    rep = getattr(request.node, "rep_call", None)
    return rep is not None and rep.failed


def require_executable(path):
    """One clear message when the binary under test is missing."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return "happac binary not found at %s: run `make build` or set HAPPAC_BIN" % path
    return None


def require_tool(name, package, fallback=None):
    """The path of an optional tool, or a skip naming its Debian package
    (one of the reasons tests/skip-allowed.txt lists)."""
    path = shutil.which(name) or fallback
    if not (path and os.access(path, os.X_OK)):
        import pytest
        pytest.skip("%s is not installed (Debian package %s)" % (name, package))
    return path


@contextlib.contextmanager
def running(server):
    """server.start() ... server.stop(), also when the start fails half-way."""
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def scratch_dir(prefix):
    """A session's scratch directory (mode 0755: servers that run as another
    user reach their subdirectories); at the end every child still running
    is stopped and the directory removed, unless HAPPAC_KEEP_TMP is set."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        stop_all()
        if os.environ.get("HAPPAC_KEEP_TMP"):
            print("kept test files in", d)
        else:
            shutil.rmtree(d, ignore_errors=True)


SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


def stop_daemons(started, failed, judge, show=None):
    """A daemon fixture's teardown: stop each of started (in that order);
    judge(h, rc, log, was_alive) returns a problem (str) or None. A daemon's
    log is printed when the test failed or it has a problem (show(log) may
    shorten it). Problems fail a test that passed otherwise."""
    import pytest
    problems = []
    for h in started:
        was_alive = h.alive()
        rc = h.stop()
        log = h.log()
        problem = judge(h, rc, log, was_alive)
        if failed or problem:
            argv = getattr(h, "args", None) or h.argv
            print("---- happac %s (exit %s) log:\n%s"
                  % (" ".join(argv), rc, show(log) if show else log))
        if problem:
            problems.append(problem)
    if problems and not failed:
        pytest.fail("\n".join(problems))
