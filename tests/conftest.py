"""Shared by every pytest suite under tests/.

- tests/lib (the process harness, the agent client, the stand-ins) goes on
  sys.path, whatever the import mode.
- Each test phase's report is kept on the item (item.rep_setup, rep_call,
  rep_teardown), so fixtures show a daemon's log only for a failed test
  (harness.call_failed).
- A skip is a failure unless its reason is on the short list in
  tests/skip-allowed.txt: a skip there means an optional tool is missing on
  this machine or a privilege the run lacks, never that a feature of happac
  is missing. A skip for any other reason (a feature that regressed, a
  leftover "not yet" guard) would hide a broken test behind `-q` output; it
  fails the run here, with the list of such skips in the summary.
Per-suite conftest.py files hold only that suite's fixtures.
"""

import os
import re
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(TESTS, "lib"))

# The suites run as root; happac refuses root unless told (HAPPAC_RUN_AS_ROOT).
os.environ.setdefault("HAPPAC_RUN_AS_ROOT", "1")

ALLOW_FILE = os.path.join(TESTS, "skip-allowed.txt")


def _allowed_patterns():
    """One regex per line (searched in the skip reason); # comments."""
    out = []
    with open(ALLOW_FILE) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                out.append(re.compile(line))
            except re.error as e:
                raise pytest.UsageError("%s:%d: bad pattern %r: %s" % (ALLOW_FILE, n, line, e))
    return out


_ALLOWED = _allowed_patterns()
_unlisted = []  # (nodeid, reason) of skips not on the list


@pytest.fixture(scope="session")
def happac_bin():
    """The daemon under test ($HAPPAC_BIN or bin/happac); a clear failure
    when it is not built."""
    import harness
    path = harness.happac_bin()
    missing = harness.require_executable(path)
    if missing:
        pytest.fail(missing)
    return path


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _skip_reason(report):
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        reason = lr[2]
    else:
        reason = str(lr)
    return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if not any(p.search(reason) for p in _ALLOWED):
            _unlisted.append((report.nodeid, reason))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    if _unlisted and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if not _unlisted:
        return
    terminalreporter.section("skips not on tests/skip-allowed.txt (they fail the run)",
                             sep="=", red=True)
    for nodeid, reason in _unlisted:
        terminalreporter.line("%s: %s" % (nodeid, reason))
