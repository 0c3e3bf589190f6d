"""Security properties from SECURITY.md that a test can hold on to: secrets
never leave the process, and happac needs no privilege."""

import os
import subprocess

import pytest

import agentcheck
import stresslib as sl

SECRET = "S3cret-pw-XYZ"
SSL_SECRET = "S3cret-key-pass-QRS"  # sslpassword: the client key's passphrase


def _http_get(path):
    req = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode()
    return agentcheck.talk((sl.AGENT_ADDR, sl.HTTP_PORT), req)[0].decode("latin-1")


def test_password_never_leaves_the_process(workdir, happac):
    """A --pg-conninfo password and sslpassword (from a 0600 config file)
    appear in no log line, not in /status, /metrics or --check-config."""
    conf = os.path.join(workdir, "secret.conf")
    with open(conf, "w") as f:
        f.write("pg-conninfo = dbname=postgres user=app password=%s sslpassword=%s\n"
                % (SECRET, SSL_SECRET))
    os.chmod(conf, 0o600)
    if os.geteuid() == 0:
        os.chown(conf, sl.NOBODY, sl.NOBODY)  # happac runs as nobody
    h = happac("-c", conf, "--http-listen", "%s:%d" % (sl.AGENT_ADDR, sl.HTTP_PORT), "-v")
    status, metrics = _http_get("/status"), _http_get("/metrics")
    assert "200 OK" in status and "200 OK" in metrics
    check = subprocess.run([sl.happac_bin(), "-t"] + h.args, capture_output=True, text=True,
                           env=sl.clean_env(), timeout=10, preexec_fn=sl.drop_to_nobody)
    assert check.returncode == 0, check.stderr
    for where, text in (("log", h.log()), ("/status", status), ("/metrics", metrics),
                        ("--check-config", check.stdout + check.stderr)):
        assert SECRET not in text, "the password shows in %s" % where
        assert SSL_SECRET not in text, "the sslpassword shows in %s" % where
    assert "pg-conninfo" in check.stdout  # it was read, only the secret is left out


def test_password_on_the_command_line_is_warned_about(workdir, happac):
    h = happac("--pg-conninfo", "dbname=postgres user=app password=%s" % SECRET)
    assert "password" in h.log() and "warning" in h.log()
    assert SECRET not in h.log()


def test_runs_unprivileged(workdir, happac):
    """happac needs no privilege: as `nobody`, with no capabilities, it
    binds its (unprivileged) port, probes, answers and stops cleanly (the
    fixture checks the exit status)."""
    if os.geteuid() != 0:
        pytest.skip("not root: happac runs as the test's own user anyway")
    h = happac()
    sl.wait_line(lambda r: r == b"up\n", 10, "up as nobody")
    st = sl.proc_status(h.pid)
    assert st["Uid"].split()[1] == str(sl.NOBODY)
    assert st["CapEff"] == "0000000000000000"


def test_refuses_to_run_as_root(workdir):
    """Started as root without --run-as-root, happac refuses with a message
    and exit status 2, before it binds anything."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    r = subprocess.run([sl.happac_bin()] + sl.happac_args(), capture_output=True, text=True,
                       env=sl.clean_env(), timeout=10)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "root" in r.stderr
    assert sl.port_free(sl.AGENT_ADDR, sl.AGENT_PORT)
