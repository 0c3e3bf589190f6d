"""HTTPS to a real Patroni (client certificate required) and --pg-conninfo with a
passfile, both from files under /etc/happac, under the unit's hardening: libcurl
and libpq are loaded with dlopen() in a process with MemoryDenyWriteExecute=yes,
ProtectSystem=strict, ProtectHome=yes and PrivateTmp=yes.

The lab's Patroni speaks plain HTTP, so this starts one more real node: etcd,
Patroni with restapi certfile/keyfile/cafile and verify_client: required, its own
PostgreSQL 15 that wants a password (scram-sha-256) from the user happac."""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile

import pytest

from container import REPO
from sd_util import agent

sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import procs  # noqa: E402
import test_patroni_tls as tls  # noqa: E402  (its PKI and Patroni configuration)

NODE = "127.0.0.26"  # not the integration suite's 127.0.0.24: they may run at once
PASSWORD = "s3cret-for-happac"


@pytest.fixture(scope="module")
def tls_node():
    for tool in (tls.ETCD, tls.PATRONI):
        if not os.path.exists(tool):
            pytest.fail("%s is missing (scripts/deps.sh installs it)" % tool)
    for port in (2379, 2380, 8008, 5432):
        if not procs.port_free(NODE, port):
            pytest.fail("%s:%d is in use: a leftover from an earlier run?" % (NODE, port))
    # Not under pytest's 0700 basetemp: etcd and Patroni run as postgres.
    base = tempfile.mkdtemp(prefix="happac-sd-tls-")
    os.chmod(base, 0o755)
    pki, node, etcd_dir = (os.path.join(base, d) for d in ("pki", "node", "etcd"))
    pw = pwd.getpwnam("postgres")
    for d in (pki, node, etcd_dir):
        os.makedirs(d)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        os.chmod(d, 0o700 if d == node else 0o755)
    tls.make_pki(pki, node=NODE)
    yml = tls.PATRONI_YML.format(node=NODE, pki=pki, dir=node)
    # postgresql.pg_hba replaces the whole file (bootstrap.pg_hba comes after
    # initdb's "127.0.0.1/32 trust", the source address of every loopback
    # connection): the user happac must give its password.
    assert "\npostgresql:\n" in yml
    yml = yml.replace("\npostgresql:\n", "\npostgresql:\n  pg_hba:\n"
                      "    - local all all trust\n"
                      "    - host all happac 127.0.0.0/8 scram-sha-256\n"
                      "    - host all all 127.0.0.0/8 trust\n"
                      "    - host replication all 127.0.0.0/8 trust\n")
    yml_path = os.path.join(base, "patroni.yml")
    with open(yml_path, "w") as f:
        f.write(yml)
    etcd = None
    patroni = None
    try:
        etcd = procs.Proc("etcd-sd-tls", [
            tls.ETCD, "--name", "sdtls", "--data-dir", os.path.join(etcd_dir, "data"),
            "--listen-client-urls", "http://%s:2379" % NODE,
            "--advertise-client-urls", "http://%s:2379" % NODE,
            "--listen-peer-urls", "http://%s:2380" % NODE,
            "--initial-advertise-peer-urls", "http://%s:2380" % NODE,
            "--initial-cluster", "sdtls=http://%s:2380" % NODE],
            os.path.join(base, "etcd.log"), user="postgres")
        procs.poll_until(lambda: procs.port_accepts(NODE, 2379), 30, step=0.1, what="etcd")
        patroni = procs.Proc("patroni-sd-tls", [tls.PATRONI, yml_path],
                             os.path.join(base, "patroni.log"), user="postgres")
        tls.wait_primary_tls(patroni, pki, 90, node=NODE)
        subprocess.run([shutil.which("psql"), "-h", node, "-p", "5432", "-U", "postgres",
                        "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c",
                        "CREATE ROLE happac LOGIN PASSWORD '%s'" % PASSWORD],
                       check=True, capture_output=True, timeout=30, user=pw.pw_uid,
                       group=pw.pw_gid)
        yield pki
    finally:
        if patroni:
            patroni.stop(timeout=20)
        if etcd:
            etcd.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_https_and_passfile_under_the_hardening(node, tls_node):
    c = node
    c.run(["install", "-d", "-m", "0750", "-g", "happac", "/etc/happac"])
    for name in ("ca.crt", "client.crt", "client.key"):
        with open(os.path.join(tls_node, name)) as f:
            c.write("/etc/happac/" + name, f.read(), mode=0o640)
        c.run(["chgrp", "happac", "/etc/happac/" + name])
    # libpq ignores a passfile that others may read: the unit's user owns it.
    c.write("/etc/happac/pgpass", "%s:5432:postgres:happac:%s\n" % (NODE, PASSWORD), mode=0o600)
    c.run(["chown", "haproxy:happac", "/etc/happac/pgpass"])
    conninfo = "host=%s port=5432 dbname=postgres user=happac connect_timeout=2" % NODE
    opts = ["happac", "recipe", "systemd", "--env", "-h", NODE, "-r", "5432", "--listen", NODE,
            "--patroni-scheme", "https", "--patroni-cafile", "/etc/happac/ca.crt",
            "--patroni-cert", "/etc/happac/client.crt", "--patroni-key", "/etc/happac/client.key"]
    try:
        # Without the passfile PostgreSQL refuses happac: the password is what
        # the passfile gives.
        env = c.run(opts + ["--pg-conninfo", conninfo]).out
        c.write("/etc/haproxy/happac.env", env)
        c.run(["systemctl", "restart", "happac"], timeout=30)
        status = c.show("happac", "StatusText")["StatusText"]
        assert status.split()[0] == "down" and "#pgbouncer" in status, status
        assert "password" in status, status
        env = c.run(opts + ["--pg-conninfo", conninfo + " passfile=/etc/happac/pgpass"]).out
        c.write("/etc/haproxy/happac.env", env)
        c.run(["systemctl", "restart", "happac"], timeout=30)
        s = c.show("happac", "ActiveState", "StatusText", "MemoryDenyWriteExecute",
                   "ProtectSystem", "ProtectHome", "PrivateTmp")
        assert s.pop("StatusText").split()[0] == "up", s
        assert s == {"ActiveState": "active",
                     "MemoryDenyWriteExecute": "yes", "ProtectSystem": "strict",
                     "ProtectHome": "yes", "PrivateTmp": "yes"}, s
        assert agent(None, NODE).startswith("up"), agent(None, NODE)
        log = c.journal("happac")
        assert "patroni=https://%s:8008/primary" % NODE in log
        assert PASSWORD not in log
    finally:
        c.run(["systemctl", "stop", "happac"], check=False, timeout=30)
