"""Fixtures for the recipe tests: `happac recipe ...` run as a real process.

HAPPAC_BIN names the binary (default: <repo>/bin/happac). Every recipe is
handed to its real consumer where one is installed here: `haproxy -c` (and a
live HAProxy routing through fake nodes), `systemd-analyze verify`, happac's
own option parser, a JSON parser. Run with Debian's interpreter:
/usr/bin/python3 -m pytest tests/recipe
"""

import os
import subprocess
import sys

import pytest

from harness import require_tool  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # any import mode

from recipe_util import happac_path  # noqa: E402

@pytest.fixture(scope="session", autouse=True)
def happac_bin():
    path = happac_path()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("happac binary not found at %s: run `make build` or set HAPPAC_BIN" % path)
    p = subprocess.run([path, "recipe", "--help"], capture_output=True, text=True, timeout=10)
    if p.returncode != 0 or "haproxy" not in p.stdout:
        pytest.fail("%s has no `recipe` subcommand (exit %d: %s): main() must dispatch "
                    "argv[1] == \"recipe\" to recipe_main()" % (path, p.returncode,
                                                                 p.stderr.strip()))
    return path


@pytest.fixture(scope="session")
def haproxy_bin():
    return require_tool("haproxy", "haproxy; make deps", fallback="/usr/sbin/haproxy")
