"""`happac recipe patroni` (issue 16): the postgresql: keys of patroni.yml, as YAML that
Patroni reads, whose commands are the real `happac ctl` with the given socket; bad input
one line on stderr, exit 2. The lab (tests/cluster/test_handover.py) runs them in Patroni."""

import shlex
import subprocess

import pytest
import yaml

from recipe_util import clean_env, run


def test_default_socket_and_bin():
    p = run(["recipe", "patroni"], env=clean_env())
    assert p.returncode == 0 and p.stderr == "", p
    doc = yaml.safe_load(p.stdout)
    assert list(doc) == ["postgresql"]
    pg = doc["postgresql"]
    ctl = "/usr/bin/happac ctl --socket /run/happac/happac.sock"
    assert pg["callbacks"] == {"on_start": ctl + " probe", "on_stop": ctl + " probe",
                               "on_role_change": ctl + " probe"}
    assert pg["before_stop"] == ctl + " stopping"
    # every line is a comment, or YAML's
    assert all(l.startswith("#") or not l.startswith(" #") for l in p.stdout.splitlines())


@pytest.mark.parametrize("opt", ["--socket", "--control-socket"])
def test_socket_option_reaches_every_command(opt, tmp_path):
    sock = str(tmp_path / "h.sock")
    p = run(["recipe", "patroni", opt, sock, "--bin", "/opt/happac/bin/happac"],
            env=clean_env())
    assert p.returncode == 0, p
    pg = yaml.safe_load(p.stdout)["postgresql"]
    cmds = list(pg["callbacks"].values()) + [pg["before_stop"]]
    for c in cmds:
        argv = shlex.split(c)  # as Patroni splits it
        assert argv[:4] == ["/opt/happac/bin/happac", "ctl", "--socket", sock], argv


def test_commands_run_and_never_fail_patroni(tmp_path, happac_bin):
    """The printed commands, with Patroni's callback arguments appended, exit 0 when
    happac is not running (the socket is missing)."""
    sock = str(tmp_path / "missing.sock")
    p = run(["recipe", "patroni", "--socket", sock, "--bin", str(happac_bin)], env=clean_env())
    pg = yaml.safe_load(p.stdout)["postgresql"]
    for name, c in pg["callbacks"].items():
        r = subprocess.run(shlex.split(c) + [name, "master", "scope"], capture_output=True,
                           text=True, timeout=5)
        assert r.returncode == 0 and "nothing to do" in r.stderr, (c, r)
    r = subprocess.run(shlex.split(pg["before_stop"]), capture_output=True, text=True, timeout=5)
    assert r.returncode == 0 and "nothing to do" in r.stderr, r


@pytest.mark.parametrize("args,needle", [
    (["--socket", "relative.sock"], "--socket: 'relative.sock' is not an absolute path"),
    (["--socket", "/run/my happac.sock"], "--socket: '/run/my happac.sock' is not an absolute"),
    (["--bin", "happac"], "--bin: 'happac' is not an absolute path"),
    (["--frobnicate"], "unknown option '--frobnicate'"),
    (["extra"], "extra"),
])
def test_bad_input(args, needle):
    p = run(["recipe", "patroni"] + args, env=clean_env())
    assert p.returncode == 2, p
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("happac recipe patroni: "), p.stderr
    assert needle in lines[0], lines[0]
