"""What the tests/systemd modules share (a module name of its own: every suite has a
conftest)."""

import importlib.util
import os
import sys

from container import REPO

if "happac_cluster" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "happac_cluster", os.path.join(REPO, "tests", "cluster", "cluster.py"))
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["happac_cluster"] = _mod
    _spec.loader.exec_module(_mod)
happac_cluster = sys.modules["happac_cluster"]


def recipe_env(addr):
    """The README's step 2 for this node."""
    return ["happac", "recipe", "systemd", "--env", "-h", addr, "-r", "6432", "--listen", addr]


def agent(lab, addr=None):
    """What HAProxy's agent-check reads from the container's happac (port 5555)."""
    if addr is None:
        reply, err = happac_cluster.agent_reply(lab.node, timeout=2.0)
    else:
        import agentcheck  # tests/lib, on sys.path through tests/conftest.py
        try:
            reply, err = agentcheck.talk((addr, happac_cluster.AGENT_PORT), timeout=2,
                                         cap=4096)[0], None
        except OSError as e:
            reply, err = None, str(e)
    return reply.decode() if reply is not None else "error: %s" % err
