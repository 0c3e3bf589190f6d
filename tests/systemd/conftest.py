"""Fixtures for tests/systemd: the lab cluster, the package from `make deb`, and one
booted Debian 12 container per session whose happac replaces the lab's on the
primary's node (same address, same agent port 5555), as on a real node.

Nothing here skips: a missing tool, a root that cannot be built or a container
that does not boot fails every test with one line that says why.
"""

import os
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from container import REPO, Container, SetupError, build_rootfs, mounts_under, nspawn_pids  # noqa: E402

os.environ.setdefault("HAPPAC_RUN_AS_ROOT", "1")

from sd_util import happac_cluster, recipe_env  # noqa: E402

TIMINGS = {}


def _setup(what, fn):
    t0 = time.monotonic()
    try:
        return fn()
    except SetupError as e:
        pytest.fail(str(e), pytrace=False)
    finally:
        TIMINGS[what] = time.monotonic() - t0


@pytest.fixture(scope="session")
def lab():
    """The real three-node cluster; its happac on the primary's node is stopped so
    that the container's happac takes that address and port."""
    with happac_cluster.Cluster() as c:
        p = c.primary()
        assert p, "no primary in the lab"
        c.stop_happac(p)
        c.node = p
        c.addr = happac_cluster.node_addr(p)
        yield c


@pytest.fixture(scope="session")
def deb():
    """The package, as `make deb` builds it (scripts/deb.sh; lintian and the unit
    tests run in tests/recipe and test-unit), or HAPPAC_DEB when given."""
    given = os.environ.get("HAPPAC_DEB")
    if given:
        return given

    def build():
        out = os.path.join(REPO, "build", "deb-systemd-test")
        p = subprocess.run([os.path.join(REPO, "scripts", "deb.sh"), "--no-lintian"],
                           capture_output=True, text=True, timeout=900, cwd=REPO,
                           env=dict(os.environ, DEB_OUT=out, DEB_BUILD_OPTIONS="nocheck"))
        if p.returncode != 0:
            raise SetupError("scripts/deb.sh failed: %s" % (p.stderr.strip().splitlines()
                                                            or ["?"])[-1])
        return p.stdout.strip().splitlines()[-1]
    return _setup("deb", build)


@pytest.fixture(scope="session")
def container(tmp_path_factory, deb):
    """A fresh copy of the cached root, booted; the package file is in
    /root/build/deb/ (the README installs it from there)."""
    base = _setup("rootfs", build_rootfs)
    work = tmp_path_factory.mktemp("nspawn")
    root = str(work / "root")

    def copy():
        p = subprocess.run(["cp", "-a", "--reflink=auto", base, root], capture_output=True,
                           text=True, timeout=300)
        if p.returncode != 0:
            raise SetupError("cannot copy the root %s: %s" % (base, p.stderr.strip()))
    _setup("copy", copy)
    os.makedirs(os.path.join(root, "root", "build", "deb"), exist_ok=True)
    shutil.copy(deb, os.path.join(root, "root", "build", "deb", os.path.basename(deb)))
    c = Container(root, str(work / "console.log"))
    try:
        _setup("boot", c.boot)
        yield c
    finally:
        try:
            c.poweroff()
        finally:
            c.kill()
            left = nspawn_pids(root)
            mounts = mounts_under(root)
            if not left and not mounts:
                shutil.rmtree(root, ignore_errors=True)
            assert not left, "systemd-nspawn still running: %s" % left
            assert not mounts, "mounts left under %s: %s" % (root, mounts)


@pytest.fixture
def node(container, lab, deb):
    """happac installed, the node's env file as the README writes it, no config file,
    the service enabled and active with no override: the state every test starts
    from (repaired here when an earlier test left something else)."""
    c = container
    if c.run(["dpkg-query", "-W", "-f=${Status}", "happac"], check=False).out != \
            "install ok installed":
        c.run(["dpkg", "-i", "/root/build/deb/" + os.path.basename(deb)], timeout=120)
    env = c.run(recipe_env(lab.addr)).out
    with open(c.path("/etc/haproxy/happac.env")) as f:
        same = f.read() == env
    if not same:
        c.write("/etc/haproxy/happac.env", env)
    c.run(["systemctl", "reset-failed", "happac"], check=False)
    if not same or c.run(["systemctl", "is-active", "happac"], check=False).out.strip() != \
            "active":
        c.run(["systemctl", "enable", "happac"])
        c.run(["systemctl", "restart", "happac"], timeout=60)
    # No override left by an earlier test (the tests of overrides check ctl itself);
    # only when there is one: a `ready` makes happac say so for a while.
    st = c.run(["happac", "ctl", "status"], check=False).out
    if st and '"admin":"ready"' not in st:
        c.run(["happac", "ctl", "ready"], check=False)
    return c


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.write_line("tests/systemd set-up: " + ", ".join(
            "%s %.1fs" % kv for kv in TIMINGS.items()))
