"""The agent client (tests/lib/agentcheck.py) with this suite's address,
127.0.0.21, as the default."""

import agentcheck
from agentcheck import AgentError, equals, is_up, starts, validate, wait_answering  # noqa: F401
from procs import ADDR


def query(port, addr=ADDR, timeout=5.0):
    return agentcheck.query(port, addr, timeout)


def check(port, addr=ADDR, timeout=5.0):
    return agentcheck.check(port, addr, timeout)


def wait_reply(port, pred, timeout, addr=ADDR, step=0.02, what=None):
    return agentcheck.wait_reply(port, pred, timeout, addr, step, what)
