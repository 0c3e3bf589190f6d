"""Helpers for the recipe tests: run `happac recipe ...` as a real process.

HAPPAC_BIN names the binary (default: <repo>/bin/happac). A module of its own
(not conftest) so that test files import it by a name no other test
directory uses.
"""

import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def happac_path():
    return os.environ.get("HAPPAC_BIN") or os.path.join(REPO, "bin", "happac")


def run(args, env=None, timeout=20, check_rc=None):
    """Run happac with args; returns the CompletedProcess (text mode)."""
    p = subprocess.run([happac_path()] + list(args), capture_output=True, text=True,
                       env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    if check_rc is not None and p.returncode != check_rc:
        raise AssertionError("happac %s: exit %d, expected %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(args), p.returncode, check_rc, p.stdout, p.stderr))
    return p


def recipe(*args, env=None):
    """stdout of a successful `happac recipe ARGS`; no stderr allowed."""
    p = run(("recipe",) + args, env=env, check_rc=0)
    assert p.stderr == "", "recipe %s wrote to stderr: %r" % (args, p.stderr)
    return p.stdout


def clean_env():
    """The environment without HAPPAC_* variables, which happac would read."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HAPPAC_")}
