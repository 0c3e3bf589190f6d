"""The integration suite's servers (PostgreSQL, PgBouncer, the Patroni
stand-in, happac) on top of tests/lib/harness.py, which starts every child in
its own process group and stops it by pid, also when a test fails.

Readiness is always a signal (a port that accepts, pg_isready, a line on
stdout), polled against a deadline: never a fixed sleep.
"""

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

from harness import PYTHON, Proc, happac_bin, poll_until, port_free  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
PG_BIN = "/usr/lib/postgresql/15/bin"
PGBOUNCER = "/usr/sbin/pgbouncer"

# Our private loopback addresses: 127.0.0.21 .. 127.0.0.29 (127.0.0.1x is the
# Patroni cluster of another engineer, 127.0.0.3x the benchmarks).
ADDR = "127.0.0.21"
PG_PORT = 5432
PGB_PORT = 6432
PATRONI_PORT = 8008
CONTROL_PORT = 8099
AGENT_PORT = 5555


def port_accepts(host, port, timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# PostgreSQL 15 (real)

class Postgres:
    def __init__(self, base):
        self.dir = os.path.join(base, "pg")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.proc = None

    def start(self):
        os.makedirs(self.sock, exist_ok=True)
        pw = pwd.getpwnam("postgres")
        for d in (self.dir, self.sock):
            os.chown(d, pw.pw_uid, pw.pw_gid)
        log = os.path.join(self.dir, "initdb.log")
        with open(log, "wb") as f:
            rc = subprocess.call(
                [PG_BIN + "/initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                 "--no-sync", "--no-instructions"],
                stdout=f, stderr=subprocess.STDOUT,
                user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], cwd="/",
                env=dict(os.environ, HOME=pw.pw_dir))
        if rc != 0:
            raise RuntimeError("initdb failed:\n" + open(log).read())
        self.proc = Proc("postgres", [
            PG_BIN + "/postgres", "-D", self.data,
            "-c", "listen_addresses=" + ADDR, "-c", "port=%d" % PG_PORT,
            "-c", "unix_socket_directories=" + self.sock,
            "-c", "fsync=off", "-c", "max_connections=50",
            "-c", "shared_buffers=16MB", "-c", "logging_collector=off",
        ], os.path.join(self.dir, "postgres.log"), user="postgres")

        def ready():
            if not self.proc.alive():
                raise RuntimeError("postgres exited:\n" + self.proc.log())
            return subprocess.call(
                ["/usr/bin/pg_isready", "-q", "-h", ADDR, "-p", str(PG_PORT), "-t", "1"]) == 0
        poll_until(ready, 60, step=0.1, what="PostgreSQL on %s:%d" % (ADDR, PG_PORT))

    def stop(self):
        if self.proc:
            # SIGINT = fast shutdown of the postmaster; the group kill follows.
            self.proc.stop(sig=signal.SIGINT, timeout=15)


# --------------------------------------------------------------------------
# PgBouncer (real)

PGB_INI = """\
[databases]
postgres = host={addr} port={pg_port} user=postgres

[pgbouncer]
listen_addr = {addr}
listen_port = {pgb_port}
unix_socket_dir =
auth_type = any
admin_users = pgbouncer
stats_users = pgbouncer
pool_mode = session
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
"""


class PgBouncer:
    def __init__(self, base):
        self.dir = os.path.join(base, "pgbouncer")
        self.ini = os.path.join(self.dir, "pgbouncer.ini")
        self.proc = None
        os.makedirs(self.dir, exist_ok=True)
        pw = pwd.getpwnam("postgres")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        with open(self.ini, "w") as f:
            f.write(PGB_INI.format(addr=ADDR, pg_port=PG_PORT, pgb_port=PGB_PORT, dir=self.dir))

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def start(self):
        # A killed PgBouncer's port is free again at once (SO_REUSEADDR), but
        # wait for it rather than fail on a race with the kernel.
        poll_until(lambda: port_free(ADDR, PGB_PORT), 10, what="port %d free" % PGB_PORT)
        self.proc = Proc("pgbouncer", [PGBOUNCER, self.ini],
                         os.path.join(self.dir, "stderr.log"), user="postgres")

        def ready():
            if not self.proc.alive():
                raise RuntimeError("pgbouncer exited:\n" + self.proc.log())
            # The same question happac asks: does the admin console answer?
            return subprocess.call(
                ["/usr/bin/pg_isready", "-q", "-h", ADDR, "-p", str(PGB_PORT),
                 "-d", "pgbouncer", "-U", "pgbouncer", "-t", "1"]) == 0
        poll_until(ready, 30, step=0.05, what="PgBouncer on %s:%d" % (ADDR, PGB_PORT))

    def ensure_running(self):
        if self.proc is not None:
            self.proc.thaw()
        if not self.alive():
            if self.proc is not None:
                self.proc.stop()
            self.start()

    def kill(self):
        self.proc.stop(sig=signal.SIGKILL, timeout=5)

    def freeze(self):
        self.proc.freeze()

    def thaw(self):
        self.proc.thaw()

    def stop(self):
        if self.proc:
            self.proc.stop(sig=signal.SIGINT, timeout=10)


# --------------------------------------------------------------------------
# Patroni stand-in (scripted; see patroni_standin.py for why)

class Standin:
    def __init__(self, base, port=PATRONI_PORT, control_port=CONTROL_PORT, mode="primary"):
        self.port = port
        self.control_port = control_port
        self.base = base
        self.mode = mode
        self.proc = None

    def start(self):
        poll_until(lambda: port_free(ADDR, self.port), 10, what="port %d free" % self.port)
        log = os.path.join(self.base, "standin-%d.log" % self.port)
        self.proc = Proc("patroni-standin", [
            PYTHON, os.path.join(HERE, "patroni_standin.py"),
            "--listen", "%s:%d" % (ADDR, self.port),
            "--control", "%s:%d" % (ADDR, self.control_port),
            "--mode", self.mode], log)

        def ready():
            if not self.proc.alive():
                raise RuntimeError("stand-in exited:\n" + self.proc.log())
            try:
                return self.stats()
            except OSError:
                return None
        poll_until(ready, 15, step=0.02, what="Patroni stand-in")
        return self

    def _control(self, path):
        with urllib.request.urlopen("http://%s:%d%s" % (ADDR, self.control_port, path),
                                    timeout=5) as r:
            return json.loads(r.read())

    def set(self, mode):
        return self._control("/set?mode=" + urllib.request.quote(mode))

    def stats(self):
        return self._control("/stats")

    def reset(self):
        return self._control("/reset")

    def stop(self):
        if self.proc:
            self.proc.stop(timeout=5)
            self.proc = None


# --------------------------------------------------------------------------
# happac (the daemon under test)

class Happac:
    """A running happac with its agent address; stderr goes to a log file."""

    def __init__(self, base, args, agent_addr, agent_port):
        self.args = list(args)
        self.addr = agent_addr
        self.port = agent_port
        fd, self.log_path = tempfile.mkstemp(prefix="happac-", suffix=".log", dir=base)
        os.close(fd)
        self.proc = Proc("happac", [happac_bin()] + self.args, self.log_path)
        self.t_start = time.monotonic()
        self.expect_clean_exit = True  # a test that kills it on purpose says so

    def log(self):
        return self.proc.log()

    def alive(self):
        return self.proc.alive()

    def stop(self, sig=signal.SIGTERM, timeout=5):
        return self.proc.stop(sig=sig, timeout=timeout)


def run_happac(args, timeout=5):
    """Run happac to completion (for option tests): (rc, stdout, stderr, seconds)."""
    t0 = time.monotonic()
    p = subprocess.run([happac_bin()] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout, start_new_session=True)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"), time.monotonic() - t0)


def which(name):
    return shutil.which(name)
