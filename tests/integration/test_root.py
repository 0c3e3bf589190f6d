"""happac needs no privilege and refuses to run as root unless told to."""

import os
import subprocess

import procs
from procs import ADDR


def run(args, env_extra=None, drop=True):
    env = dict(os.environ)
    if drop:
        env.pop("HAPPAC_RUN_AS_ROOT", None)
    env.update(env_extra or {})
    return subprocess.run([procs.happac_bin()] + args, capture_output=True, text=True,
                          timeout=10, env=env, stdin=subprocess.DEVNULL)


def test_refuses_root_with_one_clear_line(happac_bin):
    assert os.geteuid() == 0
    r = run(["-h", ADDR, "-r", "6432", "-p", "25599", "--listen", ADDR])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to run as root" in lines[0]
    assert "--run-as-root" in lines[0]


def test_run_as_root_by_option_or_environment(happac, backends):
    h = happac("--run-as-root")
    assert h.alive()
    # the fixture's own environment says HAPPAC_RUN_AS_ROOT=1: that works too
    assert os.environ.get("HAPPAC_RUN_AS_ROOT") == "1"


def test_check_config_and_clients_need_no_flag(happac_bin):
    r = run(["-h", ADDR, "-r", "6432", "--check-config"])
    assert r.returncode == 0, r.stderr
    r = run(["check", "--host", ADDR, "--port", "25598", "--timeout", "200ms"])
    assert r.returncode == 2 and "refusing" not in r.stderr
    r = run(["recipe", "consul", "--service", "primary"])
    assert r.returncode == 0, r.stderr
