"""Fixtures for happac's stress tests (see stresslib.py for the address plan).

The test process raises its RLIMIT_NOFILE soft limit to the hard limit at
import: the flood clients and happac itself (started from here) inherit it.
"""

import resource
import socket

import pytest

import stresslib as sl
from harness import call_failed, require_executable, scratch_dir, stop_daemons

_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
NOFILE = min(_hard, 1 << 16)
if _soft < NOFILE:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, _hard))


@pytest.fixture(scope="session")
def workdir():
    missing = require_executable(sl.happac_bin())
    if missing:
        pytest.exit(missing, returncode=2)
    for a in [sl.AGENT_ADDR, sl.BACKEND_ADDR] + sl.CLIENT_ADDRS:
        s = socket.socket()
        try:
            s.bind((a, 0))
        except OSError as e:
            pytest.exit("cannot bind %s (%s): loopback 127.0.0.51-59 needed" % (a, e),
                        returncode=2)
        finally:
            s.close()
    # 0755: happac runs as nobody (stresslib.drop_to_nobody)
    with scratch_dir("happac-stress-") as d:
        yield d


@pytest.fixture(scope="session")
def _standins(workdir):
    s = sl.Standins(workdir).start()
    yield s
    s.stop()


@pytest.fixture
def standins(_standins):
    """Both stand-ins healthy (`ok`) with zeroed stats; healthy again after."""
    if not _standins.proc.alive():
        raise RuntimeError("stand-ins died:\n" + _standins.proc.log())
    _standins.set(patroni="ok", pg="ok")
    _standins.reset()
    yield _standins
    if _standins.proc.alive():
        _standins.set(patroni="ok", pg="ok")


def _squeeze(log, keep=150):
    """The log with runs of one repeated line collapsed, last `keep` lines."""
    out, prev, n = [], None, 0
    for line in log.splitlines() + [None]:
        if line == prev:
            n += 1
            continue
        if prev is not None:
            out.append(prev if n == 1 else "%s   [x%d]" % (prev, n))
        prev, n = line, 1
    return "\n".join(out[-keep:])


@pytest.fixture
def happac(workdir, standins, request):
    """Factory: start happac against the stand-ins and wait for its first
    reply. Every instance is stopped by pid at teardown, and must exit 0 (a
    clean SIGTERM shutdown; under an ASan build also: no leak reports)."""
    started = []

    def start(*extra, interval="200ms", timeout="150ms", host=sl.BACKEND_ADDR,
              wait=True, ready_timeout=10.0, preexec_fn=None):
        if not sl.port_free(sl.AGENT_ADDR, sl.AGENT_PORT):
            raise RuntimeError("%s:%d is taken" % (sl.AGENT_ADDR, sl.AGENT_PORT))
        h = sl.Happac(workdir, sl.happac_args(interval, timeout, host, extra),
                      preexec_fn=preexec_fn)
        started.append(h)
        if wait:
            try:
                sl.poll_until(lambda: sl.try_check() or not h.alive(), ready_timeout,
                              what="happac's first reply")
            except TimeoutError:
                raise AssertionError("happac never answered:\n" + h.log()) from None
            assert h.alive(), "happac exited at start:\n" + h.log()
        return h

    yield start
    def judge(h, rc, _log, was_alive):
        if was_alive and rc != 0:
            return "happac did not exit cleanly on SIGTERM: exit status %s" % rc
        return None
    stop_daemons(started, call_failed(request), judge, show=_squeeze)
