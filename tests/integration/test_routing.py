"""The routing probe (--pg-conninfo), the allow-list and secrets handling,
against the real PgBouncer and PostgreSQL of the fixtures.

A second, private PgBouncer (port 6433) is started here when a test has to
re-route PgBouncer: the shared one must stay healthy for the other tests.
"""

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request

import pytest

import procs
from agent_client import check, equals, is_up, starts, wait_reply
from procs import ADDR, AGENT_PORT, PGB_PORT, poll_until

CONNINFO = "dbname=postgres user=postgres"
ALT_PGB_PORT = 6433
DEAD_PORT = 5999  # nothing listens there


def bound(interval=0.2, timeout=0.15, margin=0.3):
    return interval + timeout + margin


class AltPgBouncer:
    """A private PgBouncer whose backend the test can move (reload)."""

    def __init__(self, base, backend_port):
        self.dir = os.path.join(base, "pgbouncer-alt")
        os.makedirs(self.dir, exist_ok=True)
        pw = pwd.getpwnam("postgres")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.ini = os.path.join(self.dir, "pgbouncer.ini")
        self.write(backend_port)
        self.proc = procs.Proc("pgbouncer-alt", [procs.PGBOUNCER, self.ini],
                               os.path.join(self.dir, "stderr.log"), user="postgres")
        poll_until(lambda: procs.port_accepts(ADDR, ALT_PGB_PORT), 30,
                   what="PgBouncer on %s:%d" % (ADDR, ALT_PGB_PORT))

    def write(self, backend_port):
        with open(self.ini, "w") as f:
            f.write(procs.PGB_INI.replace("listen_port = {pgb_port}", "listen_port = %d" % ALT_PGB_PORT)
                    .format(addr=ADDR, pg_port=backend_port, pgb_port=ALT_PGB_PORT, dir=self.dir))

    def reroute(self, backend_port):
        """Point the database at another backend and reload, as an operator would."""
        self.write(backend_port)
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        self.proc.stop(sig=signal.SIGINT, timeout=10)


@pytest.fixture
def alt_pgbouncer(workdir, _postgres):
    b = AltPgBouncer(workdir, procs.PG_PORT)
    yield b
    b.stop()


def test_query_mode_up_on_primary(happac, backends):
    h = happac("--pg-conninfo", CONNINFO)
    assert check(AGENT_PORT)[0] == "up\n"
    assert "pgbouncer-check=query" in h.log()


def test_role_mismatch_replica_profile_reaches_primary(happac, backends):
    """-k replica with Patroni saying 200, but PgBouncer reaches a primary."""
    standin = backends[1]
    standin.set("replica")  # /replica 200, /primary 503
    happac("--pg-conninfo", CONNINFO, endpoint="replica")
    reply, _ = wait_reply(AGENT_PORT, starts("down #"), bound())
    assert reply == "down #role mismatch: pgbouncer reaches a primary\n"


def test_dead_backend_behind_pgbouncer(happac, standin, alt_pgbouncer):
    """PgBouncer is up and answers pings, but its backend is gone: the
    predecessor (ping) says up, the routing probe says down."""
    ping = happac(pg_port=ALT_PGB_PORT, port=AGENT_PORT)
    query = happac("--pg-conninfo", CONNINFO, pg_port=ALT_PGB_PORT, port=AGENT_PORT + 1)
    assert check(AGENT_PORT)[0] == "up\n"
    assert check(AGENT_PORT + 1)[0] == "up\n"

    alt_pgbouncer.reroute(DEAD_PORT)
    # PgBouncer keeps the client waiting for a server connection that never
    # comes (until its query_wait_timeout), so the query probe runs into its
    # deadline; an explicit error is as good. Either way: down, on time.
    reply, _ = wait_reply(AGENT_PORT + 1, starts("down #pgbouncer: "), bound() + 2.0)
    assert ("query failed" in reply or "login failed" in reply
            or reply == "down #pgbouncer: timeout after 150ms\n"), reply
    # the ping-only agent cannot see it: that is the gap this probe closes
    assert check(AGENT_PORT)[0] == "up\n"
    assert "verdict up -> down #pgbouncer: " in query.log()
    assert ping.alive()

    # Route repaired: PgBouncer refuses new logins for server_login_retry
    # (15 s by default) after a failed backend login, so allow for that.
    alt_pgbouncer.reroute(procs.PG_PORT)
    wait_reply(AGENT_PORT + 1, equals("up\n"), 20.0)


def test_login_failure_is_down_with_reason(happac, backends):
    """A conninfo PgBouncer does not know: down, with PgBouncer's own words."""
    happac("--pg-conninfo", "dbname=nosuchdb user=postgres")
    reply, _ = wait_reply(AGENT_PORT, starts("down #pgbouncer: "), bound())
    assert reply.startswith("down #pgbouncer: login failed: "), reply
    assert "nosuchdb" in reply or "08P01" in reply or "3D000" in reply, reply


def test_password_never_shown(happac, backends, workdir):
    conninfo = CONNINFO + " password=s3cr3t-value"
    h = happac("--pg-conninfo", conninfo, "--http-listen", "%s:8098" % ADDR)
    assert check(AGENT_PORT)[0] == "up\n"  # auth_type=any ignores the password
    assert "holds a password" in h.log()
    assert "s3cr3t-value" not in h.log()
    body = urllib.request.urlopen("http://%s:8098/status" % ADDR, timeout=5).read().decode()
    assert "s3cr3t-value" not in body
    status = json.loads(body)
    assert "user='postgres'" in status["config"]["pg-conninfo"]
    rc, out, err, _ = procs.run_happac(["-h", ADDR, "-r", str(PGB_PORT),
                                        "--pg-conninfo", conninfo, "--check-config"])
    assert rc == 0, err
    assert "s3cr3t-value" not in out + err
    assert "pg-conninfo = " in out


# Issue #11, 7: sslpassword (the client key's passphrase) and password, in
# keyword and URI form: neither -t nor GET /status nor the log shows them.
SECRET_FORMS = {
    "keyword": CONNINFO + " password=pw-kw-s3cret sslpassword='ssl-kw-s3cret'",
    "uri": "postgresql://postgres:pw-uri-s3cret@%s:%d/postgres?sslpassword=ssl-uri-s3cret"
           % (ADDR, PGB_PORT),
}


@pytest.mark.parametrize("form", sorted(SECRET_FORMS))
def test_secrets_never_shown(happac, backends, form):
    conninfo = SECRET_FORMS[form]
    secrets = [w for w in ("pw-kw-s3cret", "ssl-kw-s3cret", "pw-uri-s3cret", "ssl-uri-s3cret")
               if w in conninfo]
    assert len(secrets) == 2
    h = happac("--pg-conninfo", conninfo, "--http-listen", "%s:8098" % ADDR)
    # auth_type=any ignores the password; no TLS, so no key to unlock
    assert check(AGENT_PORT)[0] == "up\n"
    body = urllib.request.urlopen("http://%s:8098/status" % ADDR, timeout=5).read().decode()
    shown = json.loads(body)["config"]["pg-conninfo"]
    assert "user='postgres'" in shown and "dbname='postgres'" in shown, shown
    rc, out, err, _ = procs.run_happac(["-h", ADDR, "-r", str(PGB_PORT),
                                        "--pg-conninfo", conninfo, "--check-config"])
    assert rc == 0, err
    assert "pg-conninfo = " in out and "user='postgres'" in out
    assert "holds a password" in err and "holds sslpassword" in err, err
    for secret in secrets:
        assert secret not in body, shown
        assert secret not in out + err, out
    assert "password" not in shown  # neither keyword, not even empty
    # each secret warned about, by name, and shown nowhere in the log
    log = h.log()
    assert "holds a password" in log and "holds sslpassword" in log, log
    for secret in secrets:
        assert secret not in log


def test_bad_conninfo_exits_2(happac_bin):
    rc, out, err, _ = procs.run_happac(["-h", ADDR, "-r", "6432", "--pg-conninfo", "dbname"])
    assert rc == 2
    assert "--pg-conninfo" in err and len(err.strip().splitlines()) == 1
    rc, out, err, _ = procs.run_happac(["-h", ADDR, "-r", "6432", "--pg-conninfo",
                                        "host=a,b dbname=x"])
    assert rc == 2 and "one host" in err


def _connect_from(src, port):
    """Connect to the agent from a given loopback source; return what it says."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    s.bind((src, 0))
    s.connect((ADDR, port))
    data = b""
    try:
        while True:
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    s.close()
    return data


def test_allow_list_agent_and_http(happac, backends):
    h = happac("--allow", "127.0.0.22/32", "--allow", "::1",
               "--http-listen", "%s:8098" % ADDR, wait_ready=False)
    poll_until(lambda: "ready: answering" in h.log(), 5, what="first round")
    # allowed source: the normal reply
    assert _connect_from("127.0.0.22", AGENT_PORT) == b"up\n"
    # other sources: closed at accept without a single byte
    for _ in range(20):
        assert _connect_from("127.0.0.23", AGENT_PORT) == b""
    # HTTP: a denied source is closed at accept too, without a byte
    for src in ("127.0.0.23", "127.0.0.21"):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(3)
        s.bind((src, 0))
        s.connect((ADDR, 8098))
        try:
            s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
            got = s.recv(100)
        except (ConnectionResetError, BrokenPipeError):
            got = b""
        s.close()
        assert got == b"", got
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    s.bind(("127.0.0.22", 0))
    s.connect((ADDR, 8098))
    s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 200")
    s.close()
    # the denials are counted
    assert h.alive()


def test_allow_list_metrics_count(happac, backends):
    h = happac("--allow", "127.0.0.0/8", "--http-listen", "%s:8098" % ADDR)
    assert _connect_from("127.0.0.23", AGENT_PORT) == b"up\n"
    body = urllib.request.urlopen("http://%s:8098/metrics" % ADDR, timeout=5).read().decode()
    assert 'happac_agent_checks_total{verdict="up"}' in body
    assert h.alive()


# --------------------------------------------------------------------------
# Issue #11, 12: PgBouncer on a Unix socket only (its default unix_socket_dir
# is /var/run/postgresql); host=<dir> in --pg-conninfo.

SOCK_PGB_PORT = 6434  # only names the socket file: DIR/.s.PGSQL.6434


class SocketPgBouncer:
    """A private PgBouncer that listens on a Unix socket in a short temp dir
    (the path and the #reason stay short) and on no TCP address."""

    def __init__(self, base, abstract=False):
        self.dir = os.path.join(base, "pgbouncer-sock")
        os.makedirs(self.dir, exist_ok=True)
        pw = pwd.getpwnam("postgres")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.abstract = abstract
        if abstract:
            # Linux's abstract namespace (no file), machine-wide: a unique name
            self.sockdir = "@happac-it-%s" % os.urandom(6).hex()
        else:
            # /tmp, not the work dir: DIR/.s.PGSQL.PORT must fit 107 bytes
            self.sockdir = tempfile.mkdtemp(prefix="happac-sock-", dir="/tmp")
            os.chown(self.sockdir, pw.pw_uid, pw.pw_gid)
        self.socket = self.sockdir + "/.s.PGSQL.%d" % SOCK_PGB_PORT
        self.ini = os.path.join(self.dir, "pgbouncer.ini")
        ini = (procs.PGB_INI
               .replace("listen_addr = {addr}\n", "")
               .replace("unix_socket_dir =\n", "unix_socket_dir = %s\n" % self.sockdir)
               .format(addr=ADDR, pg_port=procs.PG_PORT, pgb_port=SOCK_PGB_PORT, dir=self.dir))
        assert "listen_addr" not in ini and self.sockdir in ini
        with open(self.ini, "w") as f:
            f.write(ini)
        self.proc = None

    def start(self):
        self.proc = procs.Proc("pgbouncer-sock", [procs.PGBOUNCER, self.ini],
                               os.path.join(self.dir, "stderr.log"), user="postgres")

        def ready():
            if not self.proc.alive():
                raise RuntimeError("pgbouncer exited:\n" + self.proc.log())
            return subprocess.call(
                ["/usr/bin/pg_isready", "-q", "-h", self.sockdir, "-p", str(SOCK_PGB_PORT),
                 "-d", "pgbouncer", "-U", "pgbouncer", "-t", "1"]) == 0
        poll_until(ready, 30, step=0.05, what="PgBouncer on %s" % self.socket)

    def stop(self, sig=signal.SIGINT):
        if self.proc:
            self.proc.stop(sig=sig, timeout=10)
            self.proc = None

    def remove(self):
        self.stop()
        if not self.abstract:
            shutil.rmtree(self.sockdir, ignore_errors=True)


@pytest.fixture
def sock_pgbouncer(workdir, _postgres):
    b = SocketPgBouncer(workdir)
    try:
        b.start()
        yield b
    finally:
        b.remove()


def test_unix_socket_host(happac, sock_pgbouncer, standin):
    """host=<dir>: libpq connects to DIR/.s.PGSQL.PORT, nothing is looked up
    in DNS; a stopped PgBouncer is down with the socket file named."""
    b = sock_pgbouncer
    conninfo = "host=%s dbname=postgres user=postgres" % b.sockdir
    h = happac("--pg-conninfo", conninfo, pg_port=SOCK_PGB_PORT)
    reply, _ = wait_reply(AGENT_PORT, equals("up\n"), bound())
    assert reply == "up\n"
    # the start-up line names where the probe goes, not -h:-r
    assert "pgbouncer=%s " % b.socket in h.log()
    # killed: the socket file stays, nobody accepts on it
    b.stop(sig=signal.SIGKILL)
    refused = "down #pgbouncer %s: connection refused\n" % b.socket
    reply, _ = wait_reply(AGENT_PORT, equals(refused), bound())
    assert reply == refused
    # back, then shut down cleanly: PgBouncer removes its socket file
    b.start()
    wait_reply(AGENT_PORT, equals("up\n"), bound() + 1.0)
    b.stop()
    assert not os.path.exists(b.socket)
    # (a probe already logged in when the stop came may first say "query
    # failed: connection closed"; the next one finds no socket file)
    gone = "down #pgbouncer %s: connect failed: No such file or directory\n" % b.socket
    reply, _ = wait_reply(AGENT_PORT, equals(gone), 2 * bound())
    assert reply == gone
    assert "resolve" not in h.log()


def test_abstract_socket_host(happac, _postgres, standin, workdir):
    """host=@name, Linux's abstract namespace, as libpq and PgBouncer read it."""
    b = SocketPgBouncer(workdir, abstract=True)
    try:
        b.start()
        h = happac("--pg-conninfo", "host=%s dbname=postgres user=postgres" % b.sockdir,
                   pg_port=SOCK_PGB_PORT)
        reply, _ = wait_reply(AGENT_PORT, equals("up\n"), bound())
        assert reply == "up\n"
        b.stop()
        refused = "down #pgbouncer %s: connection refused\n" % b.socket
        reply, _ = wait_reply(AGENT_PORT, equals(refused), 2 * bound())
        assert reply == refused
        assert "resolve" not in h.log()
    finally:
        b.remove()


def test_unix_socket_host_port_from_conninfo(happac, sock_pgbouncer, standin):
    """The port in the conninfo names the socket file (as -r does without it)."""
    b = sock_pgbouncer
    happac("--pg-conninfo", "host=%s port=%d dbname=postgres user=postgres"
           % (b.sockdir, SOCK_PGB_PORT), pg_port=DEAD_PORT)
    reply, _ = wait_reply(AGENT_PORT, equals("up\n"), bound())
    assert reply == "up\n"


def test_socket_dir_for_the_ping_is_refused(happac_bin):
    """-h is Patroni's host as well: a socket directory there is refused at
    start (the native ping speaks TCP only); --pg-conninfo host=DIR is the way."""
    rc, out, err, _ = procs.run_happac(["-h", "/var/run/postgresql", "-r", "6432"])
    assert rc == 2
    assert "-h/--patroni-host: invalid host '/var/run/postgresql'" in err
