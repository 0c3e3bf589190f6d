"""TLS to a REAL Patroni: restapi with a certificate from a test CA and
verify_client: required (every caller, health checks included, must show a
client certificate). One etcd and one Patroni node managing its own
PostgreSQL 15 on 127.0.0.24; the certificates are made here with openssl.
PgBouncer is the fixtures' real one on 127.0.0.21 (--pg-conninfo host=)."""

import os
import pwd
import shutil
import ssl
import subprocess
import urllib.request

import pytest

import procs
from agent_client import check, equals, starts, wait_reply
from procs import AGENT_PORT, PGB_PORT, poll_until

NODE = "127.0.0.24"
ETCD = "/usr/bin/etcd"
PATRONI = "/usr/bin/patroni"
CONNINFO = "host=%s port=%d dbname=postgres user=postgres" % (procs.ADDR, PGB_PORT)


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True,
                   timeout=60)


def make_pki(d, node=NODE):
    """A CA, a server certificate for node and a client certificate; and a
    second CA that signed nothing of Patroni's. (tests/systemd uses it too.)"""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=happac test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=other CA", "-keyout", "other.key", "-out", "other.crt", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:%s" % node), ("client", None)):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % name,
                "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
        extfile = os.path.join(d, name + ".ext")
        with open(extfile, "w") as f:
            f.write((ext or "extendedKeyUsage=clientAuth") + "\n")
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", extfile, "-out", name + ".crt",
                cwd=d)
    pw = pwd.getpwnam("postgres")
    for f in os.listdir(d):
        os.chown(os.path.join(d, f), pw.pw_uid, pw.pw_gid)
        os.chmod(os.path.join(d, f), 0o600 if f.endswith(".key") else 0o644)


PATRONI_YML = """\
scope: tlstest
name: tls1
restapi:
  listen: {node}:8008
  connect_address: {node}:8008
  certfile: {pki}/server.crt
  keyfile: {pki}/server.key
  cafile: {pki}/ca.crt
  verify_client: required
etcd3:
  host: {node}:2379
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
  initdb: [{{encoding: UTF8}}]
  pg_hba:
    - host all all 127.0.0.0/8 trust
    - host replication all 127.0.0.0/8 trust
postgresql:
  listen: {node}:5432
  connect_address: {node}:5432
  data_dir: {dir}/data
  bin_dir: /usr/lib/postgresql/15/bin
  authentication:
    superuser: {{username: postgres}}
    replication: {{username: postgres}}
  parameters:
    unix_socket_directories: {dir}
    fsync: "off"
    shared_buffers: 16MB
"""


def wait_primary_tls(patroni, pki, timeout, node=NODE):
    """Wait until `patroni` (a procs.Proc) on `node` answers 200 on /primary over HTTPS
    with the PKI's client certificate; fail at once when it exits. Shared
    with tests/systemd/test_systemd_tls.py."""
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    ctx.load_cert_chain(os.path.join(pki, "client.crt"), os.path.join(pki, "client.key"))

    def primary():
        if not patroni.alive():
            raise RuntimeError("patroni exited:\n" + patroni.log())
        try:
            return urllib.request.urlopen("https://%s:8008/primary" % node, timeout=1,
                                          context=ctx).status == 200
        except Exception:
            return False
    poll_until(primary, timeout, step=0.2, what="Patroni /primary over TLS")


@pytest.fixture(scope="module")
def tls_patroni(workdir):
    if not (os.path.exists(ETCD) and os.path.exists(PATRONI) and shutil.which("openssl")):
        pytest.fail("etcd, patroni and openssl are needed (scripts/deps.sh installs them)")
    for port in (2379, 2380, 8008, 5432):
        if not procs.port_free(NODE, port):
            pytest.fail("%s:%d is in use: a leftover from an earlier run?" % (NODE, port))
    base = os.path.join(workdir, "tls")
    pki = os.path.join(base, "pki")
    node = os.path.join(base, "node")
    pw = pwd.getpwnam("postgres")
    for d in (base, pki, node, os.path.join(base, "etcd")):
        os.makedirs(d, exist_ok=True)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        os.chmod(d, 0o700 if d == node else 0o755)
    make_pki(pki)
    etcd = procs.Proc("etcd-tls", [
        ETCD, "--name", "tls", "--data-dir", os.path.join(base, "etcd", "data"),
        "--listen-client-urls", "http://%s:2379" % NODE,
        "--advertise-client-urls", "http://%s:2379" % NODE,
        "--listen-peer-urls", "http://%s:2380" % NODE,
        "--initial-advertise-peer-urls", "http://%s:2380" % NODE,
        "--initial-cluster", "tls=http://%s:2380" % NODE],
        os.path.join(base, "etcd.log"), user="postgres",
        env=dict(os.environ, ETCDCTL_API="3"))
    yml = os.path.join(base, "patroni.yml")
    with open(yml, "w") as f:
        f.write(PATRONI_YML.format(node=NODE, pki=pki, dir=node))
    patroni = None
    try:
        poll_until(lambda: procs.port_accepts(NODE, 2379), 30, step=0.1, what="etcd")
        patroni = procs.Proc("patroni-tls", [PATRONI, yml], os.path.join(base, "patroni.log"),
                             user="postgres")
        wait_primary_tls(patroni, pki, 60)
        yield pki
    finally:
        if patroni:
            patroni.stop(timeout=20)
        etcd.stop()


def tls_args(pki, **kw):
    args = ["--patroni-scheme", "https", "--pg-conninfo", CONNINFO]
    if kw.get("ca", True):
        args += ["--patroni-cafile", os.path.join(pki, kw.get("ca_file", "ca.crt"))]
    if kw.get("cert", True):
        args += ["--patroni-cert", os.path.join(pki, "client.crt"),
                 "--patroni-key", os.path.join(pki, "client.key")]
    return args


def test_mtls_up(happac, pgbouncer, tls_patroni):
    h = happac(*tls_args(tls_patroni), host=NODE, listen=procs.ADDR)
    assert check(AGENT_PORT)[0] == "up\n"
    assert "patroni=https://%s:8008/primary" % NODE in h.log()


def test_without_client_certificate_is_down(happac, pgbouncer, tls_patroni):
    happac(*tls_args(tls_patroni, cert=False), host=NODE, listen=procs.ADDR)
    reply, _ = wait_reply(AGENT_PORT, starts("down #patroni"), 2.0)
    print("reply without a client certificate:", reply)
    # Patroni drops the handshake: a TLS error or a reset, never "up"
    assert ("tls error" in reply or "connect failed" in reply
            or "bad response" in reply), reply


def test_wrong_ca_is_tls_error(happac, pgbouncer, tls_patroni):
    happac(*tls_args(tls_patroni, ca_file="other.crt"), host=NODE, listen=procs.ADDR)
    reply, _ = wait_reply(AGENT_PORT, starts("down #patroni"), 2.0)
    assert reply.startswith("down #patroni %s:8008: tls error" % NODE), reply


def test_insecure_opt_out_is_loud(happac, pgbouncer, tls_patroni):
    h = happac(*(tls_args(tls_patroni, ca=False) + ["--patroni-insecure"]), host=NODE,
               listen=procs.ADDR)
    assert check(AGENT_PORT)[0] == "up\n"
    assert "--patroni-insecure: Patroni's TLS certificate is NOT verified" in h.log()


def test_plain_http_to_tls_patroni_is_down(happac, pgbouncer, tls_patroni):
    happac("--pg-conninfo", CONNINFO, host=NODE, listen=procs.ADDR)
    reply, _ = wait_reply(AGENT_PORT, starts("down #patroni"), 2.0)
    assert reply != "up\n"
