"""Fixtures for the control-socket tests (src/ctl.c).

The server runs in tests/ctl/ctl_harness.c: ctl_new() on a libevent loop, linked with the
project's objects the way the Makefile links unit tests. The harness prints
`listening ...` when the socket is ready and one `changed ...` line per change
(the readiness and change signals the tests wait on); happac's log is on its
stderr. The harness's `ctl` mode is ctl_client_main(), i.e. `happac ctl`.

Environment:
  HAPPAC_OBJ_DIR   object directory to link (default build/release; build/asan
                   links with the sanitizers)
  HAPPAC_BIN       the happac binary whose `ctl` subcommand is also tested
                   (default bin/happac)
"""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # any import mode

from ctl_util import Server  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
PKGS = ["libevent", "libcurl", "libpq"]
ASAN = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
        "-fno-sanitize-recover=all"]


def _pkg(flag):
    out = subprocess.run(["pkg-config", flag] + PKGS, check=True,
                         capture_output=True, text=True).stdout
    return out.split()


@pytest.fixture(scope="session")
def harness(tmp_path_factory):
    """Build the project's objects, then the harness linked against them."""
    objdir = os.environ.get("HAPPAC_OBJ_DIR", "build/release")
    asan = "asan" in objdir
    make = ["make", "-C", ROOT, "--no-print-directory", "O=" + objdir]
    if asan:
        make += ["CC=clang", "CFLAGS=" + " ".join(ASAN), "LDFLAGS=" + " ".join(ASAN)]
    # The whole build first (as the Makefile's unit tests do). -k: when
    # another module is mid-edit and does not compile, everything else is
    # still built and the link below shows whether ctl needs the broken part.
    built = subprocess.run(make + ["-k", objdir + "/happac"], capture_output=True, text=True)
    # Like the Makefile: one object per src/*.c except main.c.
    objs = [os.path.join(ROOT, objdir, f[:-2] + ".o")
            for f in sorted(os.listdir(os.path.join(ROOT, "src")))
            if f.endswith(".c") and f != "main.c"]
    objs = [o for o in objs if os.path.exists(o)]
    out = str(tmp_path_factory.mktemp("harness") / "ctl_harness")
    cc = ["clang"] if asan else [os.environ.get("CC", "cc")]
    cflags = ["-std=c11", "-D_GNU_SOURCE", "-DHAPPAC_VERSION=\"test\"", "-Wall",
              "-Wextra", "-Werror", "-Wshadow", "-Wformat=2", "-Wstrict-prototypes",
              "-Wmissing-prototypes", "-I" + os.path.join(ROOT, "src")] + _pkg("--cflags")
    cflags += ASAN if asan else ["-O2", "-g"]
    src = os.path.join(HERE, "ctl_harness.c")
    r = subprocess.run(cc + cflags + ["-o", out, src] + objs + _pkg("--libs"),
                       capture_output=True, text=True)
    if r.returncode == 0:
        os.chmod(out, 0o755)
        return out
    pytest.fail("cannot build the ctl harness:\n" + r.stderr + "\nmake said:\n"
                + built.stdout[-3000:] + built.stderr[-3000:])


@pytest.fixture
def sockdir():
    """A private directory that other users may traverse (for the uid tests)."""
    d = tempfile.mkdtemp(prefix="happac-ctl-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def start(harness, sockdir):
    """start(sock=None, state=...) -> a listening Server; all stopped at the end."""
    servers = []

    def _start(sock=None, state="default", wait=True, env=None, ready_ms=None):
        sock = sock or os.path.join(sockdir, "happac.sock")
        if state == "default":
            state = os.path.join(sockdir, "override.state")
        s = Server(harness, sock, state, env, ready_ms)
        servers.append(s)
        if wait:
            s.wait_listening()
        return s

    yield _start
    for s in servers:
        if s.proc.poll() is None:
            s.stop()


@pytest.fixture(params=["harness", "happac"])
def client(request, harness, happac_bin):
    """The `happac ctl` client: ctl_client_main() in the harness, and the real
    binary, whose main() dispatches `ctl` to it."""
    argv0 = [harness if request.param == "harness" else happac_bin, "ctl"]

    def run(*args, env=None, user=None, group=None, timeout=15):
        return subprocess.run(argv0 + list(args), capture_output=True, text=True,
                              timeout=timeout, env=dict(os.environ, **(env or {})),
                              user=user, group=group)

    return run

