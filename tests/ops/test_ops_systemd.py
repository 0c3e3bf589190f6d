"""systemd/happac.service, happac@.service and happac.env.

- `systemd-analyze verify` passes (the unit copied with only ExecStart's
  binary replaced by the one under test: verify insists that it exists);
- `systemd-analyze security --offline` rates the hardening "OK" or better;
- the settings that make it work are there (Type=notify, WatchdogSec,
  ExecReload by SIGHUP, the predecessor's EnvironmentFile and User);
- ExecStart, expanded from the shipped env file and from the predecessor's
  own file with systemd's rules ("${VAR}" = exactly one argument), is a
  command line that happac accepts (--check-config);
- happac@.service differs from happac.service only where it must.
"""

import os
import re
import shlex
import subprocess

import pytest

from harness import require_tool
from files import env_file
from ops_procs import REPO, clean_env

UNIT = os.path.join(REPO, "systemd", "happac.service")
TEMPLATE = os.path.join(REPO, "systemd", "happac@.service")
ENV = os.path.join(REPO, "systemd", "happac.env")
INSTALLED_BIN = "/usr/local/bin/happac"

# The predecessor's env file, as it shipped (same variables, its values).
PREDECESSOR_ENV = '''PATRONI_HOST="0.0.0.0"
AGENT_PORT="5555"
PGISREADY_PORT="5000"
PGISREADY_PATH=""
PATRONI_API_PORT="8008"
PATRONI_ENDPOINT="primary"
'''


def unit_settings(path):
    """{(section, key): [values]} from a unit file (no line continuations)."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, v = line.split("=", 1)
            out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def expand_exec(cmdline, env):
    """systemd.service(5) "Command lines": a word that is exactly ${VAR} becomes
    exactly one argument (also when empty); $VAR alone is split at blanks."""
    argv = []
    for word in shlex.split(cmdline):
        m = re.fullmatch(r"\$\{(\w+)\}", word)
        if m:
            argv.append(env.get(m.group(1), ""))
            continue
        m = re.fullmatch(r"\$(\w+)", word)
        if m:
            argv.extend(env.get(m.group(1), "").split())
            continue
        argv.append(re.sub(r"\$\{(\w+)\}", lambda mm: env.get(mm.group(1), ""), word))
    return argv


@pytest.fixture(scope="module")
def analyze():
    return require_tool("systemd-analyze", "systemd")


def _copy_with_binary(src, tmp_path, binary):
    dst = tmp_path / os.path.basename(src)
    with open(src) as f:
        text = f.read()
    assert INSTALLED_BIN in text
    dst.write_text(text.replace(INSTALLED_BIN, binary))
    return str(dst)


@pytest.mark.parametrize("unit", [UNIT, TEMPLATE], ids=os.path.basename)
def test_systemd_analyze_verify(analyze, happac_bin, tmp_path, unit):
    path = _copy_with_binary(unit, tmp_path, happac_bin)
    if unit == TEMPLATE:
        # A template is verified through an instance of it.
        inst = tmp_path / "happac@replica.service"
        os.rename(path, str(inst))
        path = str(inst)
    r = subprocess.run([analyze, "verify", "--man=no", path], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", \
        "systemd-analyze verify:\n%s%s" % (r.stdout, r.stderr)


def test_systemd_analyze_security(analyze, happac_bin, tmp_path):
    path = _copy_with_binary(UNIT, tmp_path, happac_bin)
    r = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", path],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    if r.returncode != 0 and not m:
        pytest.skip("systemd-analyze security --offline is not supported here: %s" % r.stderr)
    assert m, r.stdout
    assert float(m.group(1)) <= 2.0, "exposure %s (want <= 2.0, 'OK'):\n%s" % (
        m.group(1), r.stdout)


def test_unit_settings():
    s = unit_settings(UNIT)
    svc = lambda k: s.get(("Service", k), [])  # noqa: E731
    assert svc("Type") == ["notify"]
    assert svc("NotifyAccess") in ([], ["main"])
    assert svc("EnvironmentFile") == ["/etc/haproxy/happac.env"]
    assert svc("ExecReload") == ["/bin/kill -HUP $MAINPID"]
    assert svc("WatchdogSec") == ["10s"]
    assert svc("Restart") == ["on-failure"]
    assert svc("User") == ["haproxy"]
    # Operator overrides on by default, in directories systemd makes for them
    # (ProtectSystem=strict leaves nothing else writable); `happac ctl` and
    # the unit agree on the socket.
    assert svc("Group") == ["happac"]
    assert svc("Environment") == ["HAPPAC_CONTROL_SOCKET=/run/happac/happac.sock "
                                  "HAPPAC_STATE_FILE=/var/lib/happac/state"]
    assert svc("RuntimeDirectory") == ["happac"] and svc("StateDirectory") == ["happac"]
    assert svc("RuntimeDirectoryMode") == ["0750"]
    assert svc("CapabilityBoundingSet") == [""]
    assert svc("RestrictAddressFamilies") == ["AF_UNIX AF_INET AF_INET6"]
    assert svc("SystemCallFilter")[0] == "@system-service"
    assert svc("ProtectSystem") == ["strict"]
    for k in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "MemoryDenyWriteExecute",
              "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules",
              "ProtectControlGroups", "RestrictNamespaces", "RestrictSUIDSGID",
              "LockPersonality"):
        assert svc(k) == ["yes"], k
    assert s.get(("Install", "WantedBy")) == ["multi-user.target"]
    execstart = svc("ExecStart")
    assert execstart == [INSTALLED_BIN + " -h ${PATRONI_HOST} -p ${AGENT_PORT} "
                         "-r ${PGISREADY_PORT} -x ${PGISREADY_PATH} -o ${PATRONI_API_PORT} "
                         "-k ${PATRONI_ENDPOINT}"], "the predecessor's command line"


def test_template_differs_only_where_it_must():
    a, b = unit_settings(UNIT), unit_settings(TEMPLATE)
    diff = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
    assert diff == {("Unit", "Description"), ("Service", "EnvironmentFile"),
                    ("Service", "Environment"), ("Service", "RuntimeDirectory"),
                    ("Service", "StateDirectory")}, diff
    assert b[("Service", "EnvironmentFile")] == ["/etc/haproxy/happac-%i.env"]
    # Each instance its own socket and state: stopping one removes only its
    # own runtime directory; /var/lib/happac holds them all (purge).
    assert b[("Service", "Environment")] == [
        "HAPPAC_CONTROL_SOCKET=/run/happac-%i/happac.sock "
        "HAPPAC_STATE_FILE=/var/lib/happac/%i/state"]
    assert b[("Service", "RuntimeDirectory")] == ["happac-%i"]
    assert b[("Service", "StateDirectory")] == ["happac/%i"]


def test_env_file_has_the_predecessors_variables():
    env = env_file(open(ENV).read())
    assert set(env) == set(env_file(PREDECESSOR_ENV))
    assert env["PGISREADY_PATH"] == ""


@pytest.mark.parametrize("which", ["shipped", "predecessor"])
def test_execstart_from_env_file_is_accepted(happac_bin, which):
    text = open(ENV).read() if which == "shipped" else PREDECESSOR_ENV
    env = env_file(text)
    execstart = unit_settings(UNIT)[("Service", "ExecStart")][0]
    argv = expand_exec(execstart, env)
    assert argv[0] == INSTALLED_BIN
    i = argv.index("-x")
    assert argv[i + 1] == "", "-x ${PGISREADY_PATH} must stay one (empty) argument"
    # The unit's EnvironmentFile exports the variables to happac too.
    r = subprocess.run([happac_bin] + argv[1:] + ["--check-config"], capture_output=True,
                       text=True, timeout=10, env=clean_env(**env))
    assert r.returncode == 0, r.stderr
    assert re.search(r"^patroni-host = %s$" % re.escape(env["PATRONI_HOST"]), r.stdout, re.M), r.stdout
    assert re.search(r"^pg-is-ready-port = %s$" % env["PGISREADY_PORT"], r.stdout, re.M), r.stdout
    assert re.search(r"^port = %s$" % env["AGENT_PORT"], r.stdout, re.M), r.stdout
