#!/usr/bin/python3
"""A real Patroni + PgBouncer + happac + HAProxy cluster on loopback, for tests and the demo.

One etcd (127.0.0.1:2379/2380), and for node N = 1..3 on 127.0.0.1N with the production
ports: PostgreSQL managed by Patroni (5432, REST 8008), PgBouncer (6432) and happac
(agent port 5555). Which etcd, PostgreSQL, Patroni, PgBouncer and HAProxy: the stack's
(HAPPAC_STACK, see STACKS): debian12 the host's packages, debian13 Debian 13's, chrooted. One HAProxy runs the configuration in haproxy/ as written: Scenario A on
127.0.0.1:5000, B on 5001, C on 5002, stats socket in the temporary directory.

Everything lives in one temporary directory. Programs that refuse root (etcd, PostgreSQL,
Patroni, PgBouncer) and happac run as `postgres`; HAProxy runs as root. Every process is
started in its own session (so its pid is its process group) with a parent-death signal, and
`stop()` tears everything down by pid: process groups first, then the postmasters from their
pid files, then any process left whose command line or working directory is inside the
temporary directory. `Cluster` is a context manager; `stop()` is idempotent and also runs at
interpreter exit.

Waits are on readiness signals (Patroni /primary and /replica, agent replies, HAProxy
`show stat`), never on fixed sleeps.
"""

import atexit
import fcntl
import http.client
import os
import pwd
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import psycopg2
import psycopg2.extensions
import yaml

import agentcheck  # tests/lib, on sys.path through tests/conftest.py

REPO = Path(__file__).resolve().parents[2]
HAPROXY_DIR = REPO / "haproxy"
HAPROXY_FILES = ["global.cfg", "scenario-a.cfg", "scenario-b.cfg", "scenario-c.cfg"]
# The scenarios are what `happac recipe haproxy` prints: the lab runs HAProxy on
# the recipe output of the binary under test, and haproxy/scenario-*.cfg must
# equal it (test_haproxy_config.py). global.cfg is the lab's own.
SCENARIOS = {"a": 5000, "b": 5001, "c": 5002}


def recipe_argv(scenario):
    """The `happac recipe haproxy` arguments that print haproxy/scenario-X.cfg."""
    argv = ["recipe", "haproxy", "--scenario", scenario]
    for n in (1, 2, 3):
        argv += ["--node", f"node{n}=127.0.0.1{n}"]
    return argv + ["--bind", f"127.0.0.1:{SCENARIOS[scenario]}"]


def recipe_output(happac_bin, scenario):
    r = subprocess.run([str(happac_bin)] + recipe_argv(scenario), capture_output=True,
                       text=True, timeout=10)
    if r.returncode != 0:
        raise RuntimeError(f"happac {' '.join(recipe_argv(scenario))} failed:\n{r.stderr}")
    return r.stdout


# The paths the recipe's systemd hooks name (Debian's); the lab substitutes its own.
RECIPE_STATS_SOCKET = "/run/haproxy/admin.sock"
RECIPE_STATE_FILE = "/var/lib/haproxy/server-state"


def recipe_hook(happac_bin, name, sock, state_file):
    """The systemd line `name` (ExecStartPre, ExecStop) of the recipe's header as argv,
    with this stats socket and state file in place of Debian's paths it names; None when
    the recipe has no such line (before issue 11).

    The lab runs exactly what the recipe tells users to run. The lines hold no '$', '%'
    or backslash, so systemd's unquoting is the shell's (shlex)."""
    text = recipe_output(happac_bin, "b")
    lines = [l[1:].strip() for l in text.splitlines() if l.startswith("#   " + name + "=")]
    if not lines:
        return None
    if len(lines) != 1:
        raise ClusterError(f"the recipe header has {len(lines)} {name}= lines, not 1")
    command = lines[0].split("=", 1)[1].lstrip("-")
    command = command.replace(RECIPE_STATE_FILE, str(state_file))
    command = command.replace(RECIPE_STATS_SOCKET, str(sock))
    return shlex.split(command)

NODES = (1, 2, 3)
PG_PORT = 5432
PGBOUNCER_PORT = 6432
PATRONI_PORT = 8008
AGENT_PORT = 5555
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
# The addresses above are fixed: one lab per machine at a time (see Cluster._take_lab_lock).
LAB_LOCK = "/tmp/happac-lab.lock"
LAB_LOCK_WAIT = 3600
# HAProxy front ports, as written in haproxy/scenario-*.cfg.
PORT_A = 5000
PORT_B = 5001
PORT_C = 5002
HAPROXY_STATS_HTTP_PORT = 7000

# Patroni DCS settings (issue 3) and happac's probe settings, passed explicitly.
TTL = 10
LOOP_WAIT = 1
RETRY_TIMEOUT = 4
# PgBouncer's own default, written out: after a failed login to PostgreSQL it refuses new
# client logins to that database for this long.
PGBOUNCER_LOGIN_RETRY = 15
HAPPAC_INTERVAL = 1.0
HAPPAC_TIMEOUT = 0.8

# How often the test samplers (agents, Patroni, HAProxy stats) look. A measured time is
# "the first sample that saw it", so it can be late by one period plus one sweep.
SAMPLE_PERIOD = 0.1

SCOPE = "happac-lab"
POSTGRES_USER = "postgres"

# The stacks the lab runs on (HAPPAC_STACK, `make test-cluster STACK=...`): whose etcd,
# PostgreSQL, Patroni, PgBouncer and HAProxy it runs. happac (the binary under test) and
# this driver always run on the host; a stack with a root runs its programs chrooted in it
# (scripts/stack-exec.sh: a private mount namespace per program, so no mount outlives it).
STACKS = {
    "debian12": {"root": None, "pg_bin": "/usr/lib/postgresql/15/bin"},
    "debian13": {"root": REPO / "build" / "stack" / "debian13",
                 "pg_bin": "/usr/lib/postgresql/17/bin"},
}
DEFAULT_STACK = "debian12"
STACK_EXEC = REPO / "scripts" / "stack-exec.sh"


class Stack:
    """Where the cluster's programs come from; `argv()` wraps a command to run there."""

    def __init__(self, name=None, root=None):
        self.name = name or os.environ.get("HAPPAC_STACK") or DEFAULT_STACK
        if self.name not in STACKS:
            raise ClusterError(f"unknown stack {self.name!r} (HAPPAC_STACK): "
                               f"one of {', '.join(STACKS)}")
        spec = STACKS[self.name]
        self.root = Path(root) if root else spec["root"]
        self.pg_bin = Path(spec["pg_bin"])
        if self.root is not None and not (self.root / ".happac-rootfs").exists():
            raise ClusterError(f"stack {self.name}: no root at {self.root} "
                               f"(run scripts/stack-prepare.sh {self.name})")

    def argv(self, argv, user=None, shared=()):
        """argv as `user` (None: root) with a parent-death SIGTERM, from this stack.

        `shared`: host directories the program must see at the same path (a chroot).
        """
        cmd = ["setpriv"]
        if user is not None:
            pw = pwd.getpwnam(user)
            cmd += [f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups"]
        # The parent-death signal is the net under teardown: if the driver dies without
        # running stop(), every direct child still gets SIGTERM.
        cmd += ["--pdeathsig", "TERM", "--"] + [str(a) for a in argv]
        if self.root is None:
            return cmd
        return [str(STACK_EXEC), str(self.root), ":".join(str(d) for d in shared), "--"] + cmd

    def run(self, argv, shared=(), **kw):
        """subprocess.run of a stack program, as root."""
        return subprocess.run(self.argv(argv, shared=shared), **kw)

    def versions(self):
        """{program: version} asked from the stack's own programs (once)."""
        if getattr(self, "_versions", None) is None:
            self._versions = self._ask_versions()
        return self._versions

    def _ask_versions(self):
        def ask(argv, pattern):
            try:
                r = self.run(argv, capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired) as e:
                return f"? ({e})"
            m = re.search(pattern, r.stdout + r.stderr)
            return m.group(1) if m else f"? ({(r.stdout + r.stderr).strip()[:60]!r})"
        return {
            "Patroni": ask(["patroni", "--version"], r"patroni ([\d.]+)"),
            "PgBouncer": ask(["pgbouncer", "--version"], r"PgBouncer ([\d.]+)"),
            "HAProxy": ask(["haproxy", "-v"], r"HAProxy version ([\d.]+)"),
            "PostgreSQL": ask([str(self.pg_bin / "postgres"), "--version"], r"\) ([\d.]+)"),
            "etcd": ask(["etcd", "--version"], r"etcd Version: ([\d.]+)"),
        }

    def at_least(self, program, version):
        """Whether the stack's `program` is at least `version` ("3.0.3"); False when its
        version could not be told (versions() says why)."""
        have = self.versions().get(program, "?")
        return have[:1].isdigit() and version_tuple(have) >= version_tuple(version)

    def banner(self):
        return f"stack {self.name}: " + ", ".join(f"{k} {v}" for k, v in self.versions().items())

# The backends (HAProxy proxies with servers) in haproxy/, and what each one checks.
BACKENDS = {
    "scenario_a_write": "patroni",       # httpchk OPTIONS /primary on 8008
    "scenario_b_write": "agent",         # happac agent-check
    "scenario_c_pgbouncer": "agent",     # happac agent-check
    "scenario_c_direct": "patroni",      # httpchk OPTIONS /primary on 8008
}


def node_addr(n):
    return f"127.0.0.1{n}"


def node_name(n):
    return f"node{n}"


def _duration(text):
    m = re.fullmatch(r"(\d+)(ms|s)?", text)
    if not m:
        raise ValueError(f"cannot parse HAProxy duration {text!r}")
    value = int(m.group(1))
    return value / 1000.0 if m.group(2) == "ms" else float(value)


def haproxy_check_settings(paths=None):
    """Per-backend check settings read from haproxy/*.cfg, so test bounds follow the config.

    Returns {backend: {"inter": s, "fall": n, "rise": n, "agent_inter": s or None,
    "timeout_check": s}}.
    """
    settings = {}
    timeout_check = None
    section = None
    for path in paths or [HAPROXY_DIR / f for f in HAPROXY_FILES]:
        for raw in Path(path).read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            words = line.split()
            if words[0] in ("global", "defaults", "listen", "frontend", "backend"):
                section = words[1] if len(words) > 1 else words[0]
                continue
            if words[:2] == ["timeout", "check"]:
                # a backend's own timeout check wins over the defaults'
                if section in BACKENDS:
                    settings.setdefault(section, {})["own_timeout_check"] = _duration(words[2])
                else:
                    timeout_check = _duration(words[2])
            if words[0] == "default-server" and section in BACKENDS:
                # HAProxy's defaults, then what each default-server line of the section sets
                s = settings.get(section, {})
                if "inter" not in s:
                    s.update({"inter": 2.0, "fall": 3, "rise": 2, "agent_inter": None})
                for key in ("inter", "fall", "rise", "agent-inter"):
                    if key in words:
                        val = words[words.index(key) + 1]
                        s[key.replace("-", "_")] = int(val) if key in ("fall", "rise") else _duration(val)
                settings[section] = s
    for s in settings.values():
        s["timeout_check"] = s.pop("own_timeout_check", timeout_check)
    missing = set(BACKENDS) - set(settings)
    if missing:
        raise RuntimeError(f"haproxy/*.cfg has no default-server line for {sorted(missing)}")
    return settings


class ClusterError(RuntimeError):
    pass


def version_tuple(text):
    """"3.0.2" -> (3, 0, 2), for comparing the stack's program versions."""
    return tuple(int(x) for x in text.split(".") if x.isdigit())


class Pending:
    """A falsy predicate result that says what is still missing (shown on timeout)."""

    def __init__(self, detail):
        self.detail = detail

    def __bool__(self):
        return False

    def __repr__(self):
        return repr(self.detail)


def wait_for(what, predicate, timeout, interval=0.1):
    """Poll predicate() until it returns a truthy value; return that value.

    Raises ClusterError naming `what` and the last value seen once `timeout` seconds pass.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
        except ClusterError:
            raise
        except Exception as e:  # a probe that fails is "not ready yet"
            last = f"{type(e).__name__}: {e}"
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------
# Small clients: Patroni REST, happac agent, HAProxy stats socket, PostgreSQL writes.

def patroni_status(n, path, method="GET", timeout=1.0):
    """HTTP status of Patroni's REST `path` on node n, or None when it does not answer."""
    conn = http.client.HTTPConnection(node_addr(n), PATRONI_PORT, timeout=timeout)
    try:
        conn.request(method, path)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def agent_reply(n, timeout=1.0):
    """Connect to happac's agent port on node n and read until it closes.

    Returns (reply bytes, None) or (None, error text). Sends nothing, like HAProxy.
    """
    try:
        return agentcheck.talk((node_addr(n), AGENT_PORT), timeout=timeout, cap=4096)[0], None
    except OSError as e:
        return None, f"{type(e).__name__}: {e}"


def reply_problem(reply):
    """Why `reply` (bytes) is not a well-formed happac agent line, or None if it is.

    Well-formed: non-empty, one ASCII line ending in exactly one "\\n", first word "up" or
    "down", and a "#reason" after "down".
    """
    if not reply:
        return "empty reply"
    if not reply.endswith(b"\n"):
        return f"not newline-terminated: {reply!r}"
    body = reply[:-1]
    if b"\n" in body or b"\r" in body or b"\0" in body:
        return f"more than one line or control bytes: {reply!r}"
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        return f"not ASCII: {reply!r}"
    words = text.split()
    if not words or words[0] not in ("up", "down"):
        return f"first word is not up/down: {reply!r}"
    if words[0] == "down":
        idx = text.find("#")
        if idx < 0 or not text[idx + 1:].strip():
            return f"down without a #reason: {reply!r}"
    return None


def reply_word(reply):
    return reply.split()[0].decode("ascii") if reply and reply.split() else None


def haproxy_command(sock_path, command, timeout=2.0):
    """Send one command to the HAProxy stats socket and return its whole answer (text)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode()


def parse_show_stat(text):
    """`show stat` CSV -> {(pxname, svname): {field: value}}."""
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines or not lines[0].startswith("# "):
        raise ClusterError(f"unexpected show stat answer: {text[:200]!r}")
    fields = lines[0][2:].split(",")
    rows = {}
    for line in lines[1:]:
        vals = line.split(",")
        row = dict(zip(fields, vals))
        rows[(row["pxname"], row["svname"])] = row
    return rows


def _poll_async(conn, deadline):
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("client deadline passed")
        if state == psycopg2.extensions.POLL_READ:
            select.select([conn.fileno()], [], [], remaining)
        elif state == psycopg2.extensions.POLL_WRITE:
            select.select([], [conn.fileno()], [], remaining)
        else:
            raise psycopg2.OperationalError(f"bad poll state {state}")


def write_once(host, port, label, seq, deadline_s=2.5):
    """One client write on a fresh connection, with a hard deadline.

    Returns (ok, server_addr or None, error text or None). `server_addr` is
    inet_server_addr() of the PostgreSQL that acknowledged the row (through PgBouncer too).
    """
    deadline = time.monotonic() + deadline_s
    conn = None
    try:
        conn = psycopg2.connect(host=host, port=port, dbname="postgres", user=POSTGRES_USER,
                                async_=1)
        _poll_async(conn, deadline)
        cur = conn.cursor()
        cur.execute("INSERT INTO happac_writes (label, seq) VALUES (%s, %s) "
                    "RETURNING host(inet_server_addr())", (label, seq))
        _poll_async(conn, deadline)
        return True, cur.fetchone()[0], None
    except Exception as e:
        return False, None, f"{type(e).__name__}: {str(e).strip()}"
    finally:
        if conn is not None:
            conn.close()


class Writer(threading.Thread):
    """Writes one row every `period` seconds through host:port until stopped.

    Bounded: at most `max_seconds` and `max_count` attempts. `records` holds
    (t_start, t_end, ok, server_addr, error) in monotonic time.
    """

    def __init__(self, port, label, period=0.1, max_seconds=120.0, host="127.0.0.1",
                 deadline_s=2.5):
        super().__init__(daemon=True, name=f"writer-{port}")
        self.host, self.port, self.label = host, port, label
        self.period, self.max_seconds, self.deadline_s = period, max_seconds, deadline_s
        self.max_count = int(max_seconds / period) + 1
        self.records = []
        self._stop_event = threading.Event()

    def run(self):
        start = time.monotonic()
        for seq in range(self.max_count):
            if self._stop_event.is_set() or time.monotonic() - start > self.max_seconds:
                break
            t0 = time.monotonic()
            ok, server, err = write_once(self.host, self.port, self.label, seq, self.deadline_s)
            t1 = time.monotonic()
            self.records.append((t0, t1, ok, server, err))
            self._stop_event.wait(max(0.0, t0 + self.period - time.monotonic()))

    def stop(self):
        self._stop_event.set()
        self.join(timeout=self.deadline_s + 2)

    def failed(self):
        return [r for r in self.records if not r[2]]


class Sampler(threading.Thread):
    """Calls fn() every `period` seconds until stopped (bounded by max_seconds).

    `samples` holds (monotonic time, fn() result).
    """

    def __init__(self, fn, period=0.1, max_seconds=600.0, name="sampler"):
        super().__init__(daemon=True, name=name)
        self.fn, self.period, self.max_seconds = fn, period, max_seconds
        self.samples = []
        self._stop_event = threading.Event()

    def run(self):
        start = time.monotonic()
        while not self._stop_event.is_set() and time.monotonic() - start < self.max_seconds:
            t0 = time.monotonic()
            try:
                value = self.fn()
            except Exception as e:
                value = e
            self.samples.append((t0, value))
            self._stop_event.wait(max(0.0, t0 + self.period - time.monotonic()))

    def stop(self):
        self._stop_event.set()
        self.join(timeout=10)


# ---------------------------------------------------------------------------------------

class Cluster:
    """The whole lab. Use as `with Cluster() as c:`; see the module docstring."""

    def __init__(self, happac_bin=None, log=None, keep_dir=False, stack=None):
        self.stack = stack if isinstance(stack, Stack) else Stack(stack)
        self.happac_bin = Path(happac_bin or os.environ.get("HAPPAC_BIN") or REPO / "bin" / "happac")
        self.log = log or (lambda msg: print(f"[cluster] {msg}", file=sys.stderr, flush=True))
        self.keep_dir = keep_dir or bool(os.environ.get("HAPPAC_KEEP_LAB"))
        self.dir = None
        self.procs = {}          # name -> Popen (the process is its own process group)
        self.happac_problems = []  # happac exits other than 0 after SIGTERM, with log tails
        self.happac_extra = {}   # node -> more arguments for its main happac (a test's)
        self._noted = set()
        self._stopped = False
        self._pw = pwd.getpwnam(POSTGRES_USER)
        self.checks = haproxy_check_settings()
        # More HAProxy files a test adds to the lab's (for a while: it empties
        # the list and restarts HAProxy when done).
        self.haproxy_extra = []
        self.callbacks = False   # patroni.yml carries `happac recipe patroni` (set_callbacks)

    # -- context manager -------------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- paths -------------------------------------------------------------------------
    def node_dir(self, n):
        return self.dir / node_name(n)

    def data_dir(self, n):
        return self.node_dir(n) / "data"

    def patroni_yml(self, n):
        return self.node_dir(n) / "patroni.yml"

    @property
    def haproxy_sock(self):
        return self.dir / "haproxy" / "admin.sock"

    def log_path(self, name):
        return self.dir / "logs" / f"{name}.log"

    # -- process handling ------------------------------------------------------------
    def shared_dirs(self):
        """What a chrooted program must see at the same path: the lab directory (and
        the whole /tmp when it is in there, as Python's and libpq's temporary files are)."""
        d = self.dir.resolve()
        return ["/tmp"] if d.is_relative_to("/tmp") else [str(d)]

    def stack_argv(self, argv, user=None):
        """argv run from the lab's stack (chrooted for a stack with a root)."""
        return self.stack.argv(argv, user=user, shared=self.shared_dirs())

    def _spawn(self, name, argv, as_postgres=True, env_extra=None, cwd=None, host=None):
        """Start argv as its own process group; output appended to logs/<name>.log.

        The stack's programs come from the stack; happac (the binary under test, any argv
        whose program is a path on the host) runs on the host (`host` forces either)."""
        old = self.procs.get(name)
        if old is not None and old.poll() is None:
            raise ClusterError(f"{name} is already running (pid {old.pid})")
        if host is None:
            host = os.sep in str(argv[0])
        user = POSTGRES_USER if as_postgres else None
        if host:
            cmdline = Stack("debian12").argv(argv, user=user)
        else:
            cmdline = self.stack_argv(argv, user=user)
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self.dir),
            "USER": POSTGRES_USER if as_postgres else "root",
        }
        for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if key in os.environ:
                env[key] = os.environ[key]
        env.update(env_extra or {})
        logf = open(self.log_path(name), "ab")
        logf.write(f"==== {time.strftime('%H:%M:%S')} start: {' '.join(map(str, argv))}\n".encode())
        logf.flush()
        try:
            p = subprocess.Popen(cmdline, stdin=subprocess.DEVNULL,
                                 stdout=logf, stderr=subprocess.STDOUT, env=env,
                                 cwd=str(cwd or self.dir), start_new_session=True)
        finally:
            logf.close()
        self.procs[name] = p
        return p

    def pid(self, name):
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            raise ClusterError(f"{name} is not running")
        return p.pid

    def running(self, name):
        p = self.procs.get(name)
        return p is not None and p.poll() is None

    def _note_happac_exit(self, name, p, terminated):
        """happac must exit 0 on SIGTERM and never on its own: record anything else.

        This is what makes a sanitizer build (HAPPAC_BIN) fail the tests: ASan/UBSan/LSan
        reports end in a non-zero exit, and their text is kept from the log.
        """
        if not name.startswith("happac") or p.pid in self._noted or p.returncode is None:
            return
        self._noted.add(p.pid)
        if terminated and p.returncode == 0:
            return
        how = "after SIGTERM" if terminated else "on its own"
        self.happac_problems.append(f"{name} (pid {p.pid}) exited {how} with status {p.returncode}:\n"
                                    + self.tail(name, 40))

    def _terminate(self, name, sig=signal.SIGTERM, timeout=15.0):
        """Signal name's process group, resume it if frozen, wait; SIGKILL after timeout."""
        p = self.procs.get(name)
        if p is None:
            return
        if p.poll() is not None:
            self._note_happac_exit(name, p, terminated=False)
            return
        for s in (sig, signal.SIGCONT):
            try:
                os.killpg(p.pid, s)
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.log(f"{name} (pid {p.pid}) ignored {sig.name} for {timeout:.0f}s: SIGKILL")
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
        self._note_happac_exit(name, p, terminated=(sig == signal.SIGTERM))

    def send_signal(self, name, sig):
        """Send sig to the main process of name (e.g. SIGSTOP / SIGCONT)."""
        os.kill(self.pid(name), sig)

    def freeze(self, name):
        self.send_signal(name, signal.SIGSTOP)

    def thaw(self, name):
        self.send_signal(name, signal.SIGCONT)

    def tail(self, name, lines=20):
        try:
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- start ---------------------------------------------------------------------------
    def _check_ports_free(self):
        wanted = [("127.0.0.1", p) for p in (ETCD_CLIENT_PORT, ETCD_PEER_PORT, PORT_A, PORT_B,
                                             PORT_C, HAPROXY_STATS_HTTP_PORT)]
        for n in NODES:
            wanted += [(node_addr(n), p) for p in (PG_PORT, PGBOUNCER_PORT, PATRONI_PORT, AGENT_PORT)]
        busy = []
        for addr, port in wanted:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((addr, port))
                except OSError:
                    busy.append(f"{addr}:{port}")
        if busy:
            owners = {}
            try:
                for c in psutil.net_connections(kind="tcp"):
                    if c.status == psutil.CONN_LISTEN and c.pid:
                        owners[f"{c.laddr.ip}:{c.laddr.port}"] = c.pid
            except psutil.Error:
                pass

            def who(addr):
                port = addr.rsplit(":", 1)[1]
                pid = owners.get(addr) or owners.get(f"0.0.0.0:{port}") or owners.get(f":::{port}")
                try:
                    return f"{addr} (pid {pid}: {' '.join(psutil.Process(pid).cmdline())[:80]})"
                except (psutil.Error, TypeError, ValueError):
                    return addr
            raise ClusterError("ports already in use (another lab, or a packaged service such as "
                               "etcd.service?): " + ", ".join(who(a) for a in busy))

    def start(self):
        t0 = time.monotonic()
        if not os.access(self.happac_bin, os.X_OK):
            raise ClusterError(f"happac binary not found or not executable: {self.happac_bin} "
                               "(run `make build`, or set HAPPAC_BIN)")
        if os.geteuid() != 0:
            raise ClusterError("the lab needs root: it runs etcd, PostgreSQL, Patroni, PgBouncer "
                               "and happac as `postgres` and owns their directories")
        if not shutil.which("setpriv"):
            raise ClusterError("setpriv (util-linux) is missing")
        self._take_lab_lock()
        self._check_ports_free()
        self.dir = Path(tempfile.mkdtemp(prefix="happac-lab-"))
        os.chmod(self.dir, 0o755)
        for sub in ["logs", "etcd", "haproxy"] + [node_name(n) for n in NODES]:
            (self.dir / sub).mkdir(mode=0o700 if sub == "etcd" else 0o755)
        for sub in ["etcd"] + [node_name(n) for n in NODES]:
            os.chown(self.dir / sub, self._pw.pw_uid, self._pw.pw_gid)
        os.chmod(self.dir / "logs", 0o777)
        atexit.register(self.stop)
        self.log(f"lab directory {self.dir}")

        self.start_etcd()
        self.log("etcd is up; starting Patroni on 3 nodes")
        for n in NODES:
            self._write_patroni_yml(n)
            self._write_pgbouncer_ini(n)
            self.start_patroni(n)
        primary = self.wait_patroni_ready(timeout=90)
        self.log(f"Patroni ready: primary node{primary}, replicas streaming")
        self._create_table(primary)
        for n in NODES:
            self.start_pgbouncer(n)
        for n in NODES:
            self.wait_pgbouncer(n)
        for n in NODES:
            self.start_happac(n)
        self.wait_agents(primary)
        self.log("PgBouncer and happac up on every node; starting HAProxy")
        self.start_haproxy()
        self.wait_haproxy(primary)
        self.log(f"lab ready in {time.monotonic() - t0:.1f}s")

    # etcd ------------------------------------------------------------------------------
    def start_etcd(self, wait=True):
        client = f"http://127.0.0.1:{ETCD_CLIENT_PORT}"
        peer = f"http://127.0.0.1:{ETCD_PEER_PORT}"
        self._spawn("etcd", [
            "etcd", "--name", "etcd1", "--data-dir", self.dir / "etcd" / "data",
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"etcd1={peer}", "--initial-cluster-state", "new",
            "--initial-cluster-token", "happac-lab",
        ])
        if wait:
            self.wait_etcd()

    def wait_etcd(self, timeout=30):
        def healthy():
            if not self.running("etcd"):
                raise ClusterError("etcd exited:\n" + self.tail("etcd"))
            conn = http.client.HTTPConnection("127.0.0.1", ETCD_CLIENT_PORT, timeout=1)
            try:
                conn.request("GET", "/health")
                r = conn.getresponse()
                return r.status == 200 and b'"true"' in r.read()
            finally:
                conn.close()
        wait_for("etcd /health", healthy, timeout)

    def stop_etcd(self):
        self._terminate("etcd")

    # Patroni / PostgreSQL ----------------------------------------------------------------
    def _write_patroni_yml(self, n, tags=None, scope=SCOPE, standby_of=None):
        """tags: extra Patroni tags (e.g. nosync); standby_of (host, port): make the node
        the leader of a standby cluster `scope` that replicates from there."""
        addr = node_addr(n)
        hba = [
            "local all all trust",
            "host all all 127.0.0.0/8 trust",
            "host replication all 127.0.0.0/8 trust",
        ]
        cfg = {
            "scope": SCOPE,
            "name": node_name(n),
            "log": {"level": "INFO"},
            "restapi": {"listen": f"{addr}:{PATRONI_PORT}", "connect_address": f"{addr}:{PATRONI_PORT}"},
            "etcd3": {"host": f"127.0.0.1:{ETCD_CLIENT_PORT}"},
            "bootstrap": {
                "dcs": {
                    "ttl": TTL, "loop_wait": LOOP_WAIT, "retry_timeout": RETRY_TIMEOUT,
                    "maximum_lag_on_failover": 16 * 1024 * 1024,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "parameters": {
                            "wal_level": "replica", "hot_standby": "on", "wal_log_hints": "on",
                            "max_wal_senders": 10, "max_replication_slots": 10,
                            "wal_keep_size": "128MB", "max_connections": 100,
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}],
            },
            "postgresql": {
                "listen": f"{addr}:{PG_PORT}",
                "connect_address": f"{addr}:{PG_PORT}",
                "data_dir": str(self.data_dir(n)),
                "bin_dir": str(self.stack.pg_bin),
                "pgpass": str(self.node_dir(n) / "pgpass"),
                "authentication": {
                    "superuser": {"username": POSTGRES_USER},
                    "replication": {"username": "replicator"},
                },
                "parameters": {
                    "unix_socket_directories": str(self.node_dir(n)),
                    "shared_buffers": "32MB",
                    # A lab on one machine: durability against OS crashes buys nothing here.
                    "fsync": "off",
                },
                "pg_hba": hba,
                "remove_data_directory_on_rewind_failure": True,
                "remove_data_directory_on_diverged_timelines": True,
            },
            "watchdog": {"mode": "off"},
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False,
                     **(tags or {})},
        }
        cfg["scope"] = scope
        if self.callbacks:
            cfg["postgresql"].update(self.patroni_recipe(n)["postgresql"])
        if standby_of:
            cfg["bootstrap"]["dcs"]["standby_cluster"] = {"host": standby_of[0],
                                                          "port": standby_of[1]}
        path = self.patroni_yml(n)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        os.chown(path, self._pw.pw_uid, self._pw.pw_gid)
        os.chmod(path, 0o600)

    def lab_happac(self):
        """The binary under test, copied into the lab directory: a chrooted Patroni sees it
        there (it needs only libc and libevent, which every stack root has)."""
        path = self.dir / "bin" / "happac"
        if not path.exists():
            path.parent.mkdir(mode=0o755, exist_ok=True)
            shutil.copyfile(self.happac_bin, path)
            os.chmod(path, 0o755)
        return path

    def patroni_recipe(self, n):
        """`happac recipe patroni` for node n's control socket, parsed: what the lab merges
        into patroni.yml, exactly as the recipe prints it."""
        r = subprocess.run([str(self.happac_bin), "recipe", "patroni", "--socket",
                            str(self.node_dir(n) / "happac.sock"), "--bin",
                            str(self.lab_happac())], capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise ClusterError(f"happac recipe patroni failed: {r.stderr}")
        return yaml.safe_load(r.stdout)

    def set_callbacks(self, on):
        """Patroni's callbacks and before_stop as `happac recipe patroni` prints them (on),
        or none; every node's patroni.yml rewritten and reloaded (patronictl reload)."""
        self.callbacks = on
        for n in NODES:
            self._write_patroni_yml(n)
        r = self.patronictl("reload", SCOPE, "--force")
        if r.returncode != 0:
            raise ClusterError(f"patronictl reload failed: {r.stdout}\n{r.stderr}")

    def retag_patroni(self, n, tags):
        """Rewrite node n's Patroni tags and make it reload them (patronictl reload)."""
        self._write_patroni_yml(n, tags=tags)
        r = self.patronictl("reload", SCOPE, node_name(n), "--force")
        if r.returncode != 0:
            raise ClusterError(f"patronictl reload failed: {r.stdout}\n{r.stderr}")

    def edit_config(self, *settings):
        """patronictl edit-config --set KEY=VALUE ... --force (the cluster's DCS config)."""
        argv = ["edit-config", "--force"]
        for kv in settings:
            argv += ["--set", kv]
        r = self.patronictl(*argv)
        if r.returncode != 0:
            raise ClusterError(f"patronictl edit-config failed: {r.stdout}\n{r.stderr}")
        return r.stdout

    def start_standby_cluster(self, n, source, scope=SCOPE + "-standby"):
        """A second Patroni cluster `scope` of one node, n (on 127.0.0.1n), with
        standby_cluster replicating from source (host, port), and a PgBouncer for it."""
        nd = self.node_dir(n)
        nd.mkdir(mode=0o755, exist_ok=True)
        os.chown(nd, self._pw.pw_uid, self._pw.pw_gid)
        self._write_patroni_yml(n, scope=scope, standby_of=source)
        self._write_pgbouncer_ini(n)
        self.start_patroni(n)
        self.start_pgbouncer(n)

    def stop_node(self, n):
        """Stop node n's PgBouncer, Patroni and PostgreSQL (an extra node's)."""
        self._terminate(f"pgbouncer{n}", timeout=5)
        self._terminate(f"patroni{n}", timeout=30)
        self._stop_postmaster(n)

    def start_patroni(self, n):
        self._spawn(f"patroni{n}", ["patroni", self.patroni_yml(n)], cwd=self.node_dir(n))

    def roles(self):
        """{n: 'primary' | 'replica' | None} from Patroni's /primary and /replica."""
        out = {}
        for n in NODES:
            if patroni_status(n, "/primary", "OPTIONS") == 200:
                out[n] = "primary"
            elif patroni_status(n, "/replica", "OPTIONS") == 200:
                out[n] = "replica"
            else:
                out[n] = None
        return out

    def primary(self):
        """The node whose Patroni answers /primary 200 (exactly one), else None."""
        prim = [n for n in NODES if patroni_status(n, "/primary", "OPTIONS") == 200]
        return prim[0] if len(prim) == 1 else None

    def wait_patroni_ready(self, timeout=60):
        """Wait for /primary 200 on one node and /replica 200 on the two others."""
        def ready():
            for n in NODES:
                if not self.running(f"patroni{n}"):
                    raise ClusterError(f"patroni{n} exited:\n" + self.tail(f"patroni{n}"))
            r = self.roles()
            prim = [n for n, role in r.items() if role == "primary"]
            reps = [n for n, role in r.items() if role == "replica"]
            return prim[0] if len(prim) == 1 and len(reps) == 2 else Pending(r)
        return wait_for("Patroni: one /primary 200 and two /replica 200", ready, timeout, 0.2)

    def _create_table(self, primary):
        conn = psycopg2.connect(host=node_addr(primary), port=PG_PORT, dbname="postgres",
                                user=POSTGRES_USER, connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS happac_writes ("
                            " id bigserial PRIMARY KEY, label text NOT NULL, seq int NOT NULL,"
                            " at timestamptz NOT NULL DEFAULT clock_timestamp())")
        finally:
            conn.close()

    def postmaster_pid(self, n):
        try:
            return int((self.data_dir(n) / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def kill_postgres(self, n, sig=signal.SIGKILL):
        """Signal node n's postmaster (read from postmaster.pid); returns its pid."""
        pid = self.postmaster_pid(n)
        if pid is None:
            raise ClusterError(f"node{n} has no postmaster.pid")
        os.kill(pid, sig)
        return pid

    def patronictl(self, *args, timeout=60):
        """Run patronictl against node 1's configuration; returns CompletedProcess."""
        return subprocess.run(self.stack_argv(["patronictl", "-c", str(self.patroni_yml(1))]
                                              + list(args)),
                              capture_output=True, text=True, timeout=timeout)

    def switchover(self, leader, candidate, timeout=30):
        """patronictl switchover from leader to candidate; returns its output once Patroni
        has taken it. patronictl exits 0 when Patroni refuses ("Switchover failed, details:
        503, ..."): the leader found the candidate not yet eligible, e.g. just after a rejoin
        (Patroni 4 also weighs the candidate's timeline). Asked again each second until
        Patroni takes it, up to timeout."""
        deadline = time.monotonic() + timeout

        def taken():
            r = self.patronictl("switchover", "--leader", node_name(leader),
                                "--candidate", node_name(candidate), "--force")
            if r.returncode != 0:
                raise ClusterError(f"patronictl switchover failed: {r.stdout}\n{r.stderr}")
            if "failed, details" in r.stdout:
                print(f"[cluster] Patroni refused the switchover to node{candidate}: "
                      f"{r.stdout.strip()}", flush=True)
                return Pending(r.stdout.strip())
            return r.stdout
        out = wait_for(f"Patroni to take the switchover to node{candidate}", taken, timeout, 1.0)
        if "status unknown" in out:   # asked, not yet seen done: it may still come
            wait_for(f"node{candidate} primary after '{out.strip()}'",
                     lambda: self.primary() == candidate or Pending(self.roles()),
                     max(1, deadline - time.monotonic()), 0.2)
        return out

    # PgBouncer ---------------------------------------------------------------------------
    def _write_pgbouncer_ini(self, n, backend=None):
        """backend (host, port): where the postgres database routes; default the node's own."""
        addr = node_addr(n)
        nd = self.node_dir(n)
        bhost, bport = backend or (addr, PG_PORT)
        text = f"""\
[databases]
postgres = host={bhost} port={bport} user={POSTGRES_USER}

[pgbouncer]
listen_addr = {addr}
listen_port = {PGBOUNCER_PORT}
unix_socket_dir =
auth_type = any
admin_users = pgbouncer
pool_mode = session
pidfile = {nd}/pgbouncer.pid
max_client_conn = 200
default_pool_size = 20
server_login_retry = {PGBOUNCER_LOGIN_RETRY}
"""
        path = nd / "pgbouncer.ini"
        path.write_text(text)
        os.chown(path, self._pw.pw_uid, self._pw.pw_gid)

    def start_pgbouncer(self, n, wait=False):
        pidfile = self.node_dir(n) / "pgbouncer.pid"
        if pidfile.exists() and not self.running(f"pgbouncer{n}"):
            pidfile.unlink()  # left by a SIGKILLed PgBouncer; it refuses to start otherwise
        self._spawn(f"pgbouncer{n}", ["pgbouncer", self.node_dir(n) / "pgbouncer.ini"])
        if wait:
            self.wait_pgbouncer(n)

    def wait_pgbouncer(self, n, timeout=20):
        def ready():
            if not self.running(f"pgbouncer{n}"):
                raise ClusterError(f"pgbouncer{n} exited:\n" + self.tail(f"pgbouncer{n}"))
            conn = psycopg2.connect(host=node_addr(n), port=PGBOUNCER_PORT, dbname="pgbouncer",
                                    user="pgbouncer", connect_timeout=2)
            conn.close()
            return True
        wait_for(f"PgBouncer on node{n}", ready, timeout)

    def reroute_pgbouncer(self, n, backend=None):
        """Point node n's PgBouncer at another backend and reload it (SIGHUP), as an
        operator (or a broken automation) would; backend None restores the node's own."""
        self._write_pgbouncer_ini(n, backend)
        self.send_signal(f"pgbouncer{n}", signal.SIGHUP)

    def kill_pgbouncer(self, n, sig=signal.SIGKILL):
        p = self.procs[f"pgbouncer{n}"]
        os.kill(p.pid, sig)
        p.wait(10)

    # happac ------------------------------------------------------------------------------
    def happac_argv(self, n):
        addr = node_addr(n)
        return [self.happac_bin, "-h", addr, "-r", PGBOUNCER_PORT, "-o", PATRONI_PORT,
                "-k", "primary", "-p", AGENT_PORT, "--listen", addr,
                "--interval", f"{int(HAPPAC_INTERVAL * 1000)}ms",
                "--timeout", f"{int(HAPPAC_TIMEOUT * 1000)}ms",
                # operator overrides, as the shipped unit enables them
                "--control-socket", self.node_dir(n) / "happac.sock",
                "--state-file", self.node_dir(n) / "happac.state"] + (
                    ["-v"] if os.environ.get("HAPPAC_LAB_VERBOSE") else []) + list(
                        self.happac_extra.get(n, ()))

    def start_happac(self, n):
        old = self.procs.get(f"happac{n}")
        if old is not None and old.poll() is not None:
            self._note_happac_exit(f"happac{n}", old, terminated=False)
        return self._spawn(f"happac{n}", self.happac_argv(n))

    def stop_happac(self, n):
        self._terminate(f"happac{n}", timeout=5)

    def restart_happac(self, n):
        self.stop_happac(n)
        return self.start_happac(n)

    def sample_agents(self, timeout=1.0):
        """{n: (reply bytes or None, error or None)} for all three agents, one after another."""
        return {n: agent_reply(n, timeout) for n in NODES}

    def wait_agents(self, primary, timeout=20):
        """Wait until the primary's happac says up and every replica's says down."""
        def ready():
            for n in NODES:
                if not self.running(f"happac{n}"):
                    raise ClusterError(f"happac{n} exited:\n" + self.tail(f"happac{n}"))
            replies = self.sample_agents()
            words = {n: reply_word(r) for n, (r, _) in replies.items()}
            want = {n: ("up" if n == primary else "down") for n in NODES}
            return words == want or Pending(replies)
        return wait_for(f"happac: up on node{primary}, down elsewhere", ready, timeout)

    # HAProxy -----------------------------------------------------------------------------
    def haproxy_files(self):
        """global.cfg, then each scenario as the binary under test prints it; all in the
        lab directory, where a chrooted HAProxy sees them too."""
        files = [self.dir / "haproxy" / "global.cfg"]
        shutil.copyfile(HAPROXY_DIR / "global.cfg", files[0])
        for x in SCENARIOS:
            path = self.dir / "haproxy" / f"scenario-{x}.cfg"
            path.write_text(recipe_output(self.happac_bin, x))
            files.append(path)
        return files + list(self.haproxy_extra)

    def haproxy_argv(self):
        argv = ["haproxy", "-db"]
        for f in self._haproxy_files:
            argv += ["-f", f]
        return argv

    @property
    def haproxy_state_file(self):
        """server-state-file in haproxy/global.cfg, under HAPPAC_RUN_DIR."""
        return self.dir / "haproxy" / "server-state"

    def haproxy_hook(self, name):
        return recipe_hook(self.happac_bin, name, self.haproxy_sock, self.haproxy_state_file)

    def run_haproxy_hook(self, name):
        argv = self.haproxy_hook(name)
        if argv is None:
            return None
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        self.log(f"haproxy {name}: exit {r.returncode} {r.stderr.strip()}")
        return r

    def start_haproxy(self, hooks=True):
        """Start HAProxy as its unit does: ExecStartPre (every saved server DOWN), then
        HAProxy. hooks=False starts it without (the state file as it is)."""
        self._haproxy_files = self.haproxy_files()
        if hooks and self.haproxy_state_file.exists():
            self.run_haproxy_hook("ExecStartPre")
        env = {"HAPPAC_RUN_DIR": str(self.dir / "haproxy")}
        # A socket left by the last process would pass for the new one's.
        if not self.running("haproxy") and self.haproxy_sock.exists():
            self.haproxy_sock.unlink()
        check = subprocess.run(self.stack_argv(["haproxy", "-c", "-q"] + self.haproxy_argv()[2:]), env={**os.environ, **env},
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise ClusterError(f"haproxy -c failed:\n{check.stdout}{check.stderr}")
        self.haproxy_started = time.monotonic()
        self._spawn("haproxy", self.haproxy_argv(), as_postgres=False, env_extra=env)

        def listening():
            if not self.running("haproxy"):
                raise ClusterError("haproxy exited:\n" + self.tail("haproxy"))
            return self.haproxy_sock.exists()
        wait_for("HAProxy stats socket", listening, 10)

    def stop_haproxy(self, hooks=True):
        """Stop HAProxy as its unit does: ExecStop (save the server states), then SIGTERM."""
        if hooks:
            self.run_haproxy_hook("ExecStop")
        self._terminate("haproxy", timeout=10)

    def show_stat(self):
        return parse_show_stat(haproxy_command(self.haproxy_sock, "show stat"))

    def show_servers_state(self):
        return haproxy_command(self.haproxy_sock, "show servers state")

    def server_states(self):
        """{backend: {n: status}} for the four backends, e.g. {'scenario_b_write': {1: 'UP'}}.

        "DOWN (agent)" (marked down by the agent) reads as "DOWN"; transitional states such
        as "UP 1/2" are kept as they are.
        """
        rows = self.show_stat()
        return {be: {n: rows[(be, node_name(n))]["status"].replace(" (agent)", "") for n in NODES}
                for be in BACKENDS}

    @staticmethod
    def expected_states(primary):
        return {be: {n: ("UP" if n == primary else "DOWN") for n in NODES} for be in BACKENDS}

    def wait_haproxy(self, primary, timeout=20):
        """Wait until every backend shows the primary UP and the others DOWN."""
        want = self.expected_states(primary)
        def ready():
            states = self.server_states()
            return states == want or Pending(states)
        return wait_for(f"HAProxy: node{primary} UP and others DOWN in every backend", ready, timeout)

    # health ------------------------------------------------------------------------------
    def wait_healthy(self, timeout=90):
        """Wait for the steady state: one primary, two replicas, agents and HAProxy agree.

        Returns the primary node. Restarts nothing: see heal().
        """
        deadline = time.monotonic() + timeout
        primary = self.wait_patroni_ready(timeout=max(1, deadline - time.monotonic()))
        self.wait_agents(primary, timeout=max(1, deadline - time.monotonic()))
        self.wait_haproxy(primary, timeout=max(1, deadline - time.monotonic()))
        if self.primary() != primary:
            return self.wait_healthy(max(1, deadline - time.monotonic()))
        return primary

    def heal(self):
        """Resume every frozen process and start every one that is gone (after a failed case)."""
        for name, p in list(self.procs.items()):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        if not self.running("etcd"):
            self.start_etcd()
        for n in NODES:
            if not self.running(f"patroni{n}"):
                self.start_patroni(n)
            if not self.running(f"pgbouncer{n}"):
                self.start_pgbouncer(n)
            if not self.running(f"happac{n}"):
                p = self.procs.get(f"happac{n}")
                if p is not None:
                    self._note_happac_exit(f"happac{n}", p, terminated=False)
                self.start_happac(n)
        if not self.running("haproxy"):
            self.start_haproxy()

    def _take_lab_lock(self):
        """One lab per machine: the addresses and ports are fixed, so a second run (another
        checkout's tests, the demo) waits here for the first to stop, up to LAB_LOCK_WAIT."""
        self._lock = open(LAB_LOCK, "a")
        deadline = time.monotonic() + LAB_LOCK_WAIT
        waited = False
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self._lock.close()
                    self._lock = None
                    raise ClusterError(f"another lab held {LAB_LOCK} for {LAB_LOCK_WAIT}s")
                if not waited:
                    self.log(f"another lab is running; waiting for {LAB_LOCK}")
                    waited = True
                time.sleep(1)

    def _release_lab_lock(self):
        if getattr(self, "_lock", None) is not None:
            self._lock.close()  # closing the file releases the flock
            self._lock = None

    # stop --------------------------------------------------------------------------------
    def stop(self):
        """Tear everything down by pid; idempotent; never raises."""
        if self._stopped or self.dir is None:
            self._release_lab_lock()
            return
        self._stopped = True
        t0 = time.monotonic()

        def step(fn, *args):
            try:
                fn(*args)
            except Exception as e:  # keep tearing down whatever one step did
                self.log(f"teardown: {fn.__name__}{args}: {type(e).__name__}: {e}")

        for name in ["haproxy"] + [f"happac{n}" for n in NODES] + [f"pgbouncer{n}" for n in NODES]:
            step(self._terminate, name, signal.SIGTERM, 5)
        # Patroni stops its PostgreSQL on SIGTERM (fast shutdown): signal all three at once.
        for n in NODES:
            p = self.procs.get(f"patroni{n}")
            if p is not None and p.poll() is None:
                for sig in (signal.SIGTERM, signal.SIGCONT):
                    step(os.killpg, p.pid, sig)
        for n in NODES:
            step(self._terminate, f"patroni{n}", signal.SIGTERM, 30)
        # A postmaster is not Patroni's child: it runs in its own session.
        for n in NODES:
            step(self._stop_postmaster, n)
        step(self._terminate, "etcd", signal.SIGTERM, 10)
        for name in list(self.procs):
            step(self._terminate, name, signal.SIGTERM, 5)
        step(self._sweep)
        for problem in self.happac_problems:
            self.log("PROBLEM: " + problem)
        if self.keep_dir:
            self.log(f"stopped in {time.monotonic() - t0:.1f}s; kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.log(f"stopped in {time.monotonic() - t0:.1f}s; removed {self.dir}")
        self._release_lab_lock()

    def _stop_postmaster(self, n):
        pid = self.postmaster_pid(n)
        if not pid or not psutil.pid_exists(pid):
            return
        proc = psutil.Process(pid)
        if str(self.data_dir(n)) not in proc.cmdline():
            return  # the pid file is stale and the pid reused by someone else
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            proc.wait(15)
        except psutil.TimeoutExpired:
            proc.kill()

    def _sweep(self):
        """Kill, by pid, any process whose command line or cwd is inside the lab directory."""
        root = str(self.dir)
        left = []
        for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
            try:
                cmd = " ".join(proc.info["cmdline"] or [])
                cwd = proc.info["cwd"] or ""
                inside = (root + os.sep) in cmd or cwd == root or cwd.startswith(root + os.sep)
                if proc.pid != os.getpid() and inside:
                    left.append(proc)
            except psutil.Error:
                pass
        for proc in left:
            self.log(f"leftover pid {proc.pid}: {' '.join(proc.info['cmdline'] or [])[:100]}; SIGKILL")
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(left, timeout=5)
