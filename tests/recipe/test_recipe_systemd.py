"""`happac recipe systemd`: a unit systemd accepts, kept in step with
systemd/happac.service, and an env file that, read the way systemd reads it
and passed through the unit's ExecStart, gives happac exactly the options
the recipe was asked for."""

import os
import re
import subprocess

import pytest

from harness import require_tool
from recipe_util import REPO, clean_env, happac_path, recipe, run

ENV_FILE = "/etc/haproxy/happac.env"


def split_recipe(text):
    """The combined output: {path: content} from its '# ==> PATH <==' headers."""
    parts, current = {}, None
    for line in text.splitlines(keepends=True):
        m = re.match(r"^# ==> (\S+) <==$", line.rstrip("\n"))
        if m:
            current = m.group(1)
            parts[current] = ""
        else:
            assert current, "text before the first header: %r" % line
            parts[current] += line
    return parts


def unit_directives(text):
    """[(section, key, value)] of a unit file, comments and blank lines dropped."""
    out, section = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        key, _, value = line.partition("=")
        out.append((section, key, value))
    return out


def parse_env_file(text):
    """systemd's EnvironmentFile= syntax, as far as the recipe writes it:
    KEY="value" with \\ escapes inside double quotes, comments, blank lines."""
    env = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(("#", ";")):
            continue
        m = re.fullmatch(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"', line)
        assert m, "not KEY=\"value\": %r" % line
        env[m.group(1)] = re.sub(r"\\(.)", r"\1", m.group(2))
    return env


def exec_start_argv(unit_text, env):
    """ExecStart with ${VAR} expanded as systemd does: one argument each."""
    line = [v for s, k, v in unit_directives(unit_text) if k == "ExecStart"]
    assert len(line) == 1
    argv = []
    for word in line[0].split():
        m = re.fullmatch(r"\$\{([A-Za-z0-9_]+)\}", word)
        argv.append(env[m.group(1)] if m else word)
    return argv


def check_config(args, env):
    p = subprocess.run([happac_path(), "--check-config"] + args, capture_output=True, text=True,
                       env=env, timeout=10)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout


@pytest.mark.parametrize("options", [
    ["-h", "127.0.0.1", "-r", "6432"],
    ["-h", "db1.example", "-r", "6432", "-p", "5600", "-o", "8009", "-k", "replica?lag=16MB",
     "-x", "/usr/bin/pg_isready"],
    ["--patroni-host", "[::1]", "--pg-is-ready-port", "6432", "--interval", "500ms",
     "--timeout", "300ms", "--listen", "::1", "--http-listen", "[::1]:8405", "-v"],
    ["-h", "127.0.0.1", "-r", "6432", "--profile", "replica:5556", "--stale-after", "9s",
     "--pg-conninfo", "user=happac dbname=postgres passfile=/etc/haproxy/pgpass"],
])
def test_env_file_reproduces_the_options(options, tmp_path):
    """The unit + env file give happac the same effective settings as the
    options given to the recipe (compared with happac --check-config)."""
    env = clean_env()
    parts = split_recipe(recipe("systemd", *options, env=env))
    assert set(parts) == {"/etc/systemd/system/happac.service", ENV_FILE}
    file_env = parse_env_file(parts[ENV_FILE])
    for var in ("PATRONI_HOST", "AGENT_PORT", "PGISREADY_PORT", "PGISREADY_PATH",
                "PATRONI_API_PORT", "PATRONI_ENDPOINT"):
        assert var in file_env
    argv = exec_start_argv(parts["/etc/systemd/system/happac.service"], file_env)
    assert argv[0] == "/usr/bin/happac"
    want = check_config(options, env)
    got = check_config(argv[1:], dict(env, **file_env))
    assert got == want


def test_env_file_keeps_the_config_file_in_charge(tmp_path):
    """With -c, settings from the file stay in the file (SIGHUP reloads it);
    only what the command line changes on top of it becomes a variable."""
    conf = tmp_path / "happac.conf"
    conf.write_text("interval = 2s\nlisten = 127.0.0.1\nlisten = ::1\n")
    env = clean_env()
    options = ["-c", str(conf), "-h", "127.0.0.1", "-r", "6432", "--timeout", "500ms"]
    text = recipe("systemd", "--env", *options, env=env)
    file_env = parse_env_file(text)
    assert file_env["HAPPAC_CONFIG"] == str(conf)
    assert file_env["HAPPAC_TIMEOUT"] == "500ms"
    assert "HAPPAC_INTERVAL" not in file_env and "HAPPAC_LISTEN" not in file_env
    unit = recipe("systemd", "--unit", *options, env=env)
    argv = exec_start_argv(unit, file_env)
    assert check_config(argv[1:], dict(env, **file_env)) == check_config(options, env)


def test_unit_is_valid_for_systemd(tmp_path):
    analyze = require_tool("systemd-analyze", "systemd")
    for options in (["-h", "127.0.0.1", "-r", "6432"], ["-h", "::1", "-r", "6432", "-p", "555"]):
        unit = tmp_path / "happac.service"
        unit.write_text(recipe("systemd", "--unit", "--bin", happac_path(), *options,
                               env=clean_env()))
        p = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True,
                           text=True, timeout=60)
        # verify exits 0 on unknown keys too; they show on stderr.
        assert p.returncode == 0 and p.stderr.strip() == "", p.stderr


def test_unit_shape():
    unit = recipe("systemd", "--unit", "-h", "127.0.0.1", "-r", "6432", env=clean_env())
    d = unit_directives(unit)
    get = {(s, k): v for s, k, v in d}
    assert get[("[Service]", "Type")] == "notify"
    assert get[("[Service]", "EnvironmentFile")] == ENV_FILE
    assert get[("[Service]", "ExecStart")] == (
        "/usr/bin/happac -h ${PATRONI_HOST} -p ${AGENT_PORT} -r ${PGISREADY_PORT} "
        "-x ${PGISREADY_PATH} -o ${PATRONI_API_PORT} -k ${PATRONI_ENDPOINT}")
    assert get[("[Service]", "CapabilityBoundingSet")] == ""
    assert get[("[Install]", "WantedBy")] == "multi-user.target"
    low = dict(((s, k), v) for s, k, v in unit_directives(
        recipe("systemd", "--unit", "-h", "127.0.0.1", "-r", "6432", "-p", "555",
               env=clean_env())))
    assert low[("[Service]", "AmbientCapabilities")] == "CAP_NET_BIND_SERVICE"
    assert low[("[Service]", "CapabilityBoundingSet")] == "CAP_NET_BIND_SERVICE"


def test_unit_matches_systemd_dir():
    """The generated unit and systemd/happac.service say the same, apart from
    where happac is installed (/usr/bin from the package, /usr/local/bin from
    make install): a change to one must reach the other."""
    path = os.path.join(REPO, "systemd", "happac.service")
    assert os.path.exists(path), "%s is missing from the repository" % path
    with open(path) as f:
        hand = unit_directives(f.read())
    gen = unit_directives(recipe("systemd", "--unit", "--bin", "/usr/local/bin/happac",
                                 "-h", "127.0.0.1", "-r", "6432", env=clean_env()))
    hand = [(s, k, v.replace("/usr/local/bin/happac", "/usr/bin/happac")) for s, k, v in hand]
    gen = [(s, k, v.replace("/usr/local/bin/happac", "/usr/bin/happac")) for s, k, v in gen]
    assert gen == hand


def test_env_file_matches_systemd_dir():
    """For the defaults, the variables are those of systemd/happac.env."""
    path = os.path.join(REPO, "systemd", "happac.env")
    assert os.path.exists(path), "%s is missing from the repository" % path
    with open(path) as f:
        hand = parse_env_file(f.read())
    gen = parse_env_file(recipe("systemd", "--env", "-h", "127.0.0.1", "-r", "6432",
                                env=clean_env()))
    assert gen == hand


@pytest.mark.parametrize("options,message", [
    ([], "-h/--patroni-host is required"),
    (["-h", "127.0.0.1"], "-r/--pg-is-ready-port is required"),
    (["-h", "127.0.0.1", "-r", "0"], "'0'"),
    (["-h", "127.0.0.1", "-r", "70000"], "'70000'"),
    (["-h", "127.0.0.1", "-r", "6432", "--interval", "fast"], "'fast'"),
    (["-h", "127.0.0.1", "-r", "6432", "--listen", "127.0.0.1", "--listen", "::1"],
     "--listen: these values cannot be one environment variable"),
    (["-h", "127.0.0.1", "-r", "6432", "--pg-conninfo", "user=a password=secret"],
     "--pg-conninfo holds a password"),
    (["-h", "127.0.0.1", "-r", "6432", "--bin", "happac"], "--bin: 'happac'"),
    (["-h", "127.0.0.1", "-r", "6432", "--version"], "--version is not a setting"),
    (["-h", "127.0.0.1", "-r", "6432", "-t"], "-t/--check-config is not a setting"),
    (["-h", "127.0.0.1", "-r", "6432", "--bogus"], "unknown option '--bogus'"),
])
def test_bad_options(options, message):
    p = run(["recipe", "systemd"] + options, env=clean_env())
    assert p.returncode == 2
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("happac recipe systemd: "), p.stderr
    assert message in lines[0]
    assert "secret" not in p.stderr
