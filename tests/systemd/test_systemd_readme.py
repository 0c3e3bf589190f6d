"""The README's "Set up a node in three steps" and its `happac ctl` commands, run as
written in the booted container (only the node's address is changed: the README's
10.0.0.11 becomes the lab primary's 127.0.0.1N)."""

import os
import re

from container import REPO
from sd_util import agent

README_ADDR = "10.0.0.11"


def readme_block(heading, first_line):
    """The commands of the first ```sh block after heading that starts with
    first_line: comments dropped, continuation lines joined."""
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    section = text[text.index(heading):]
    for m in re.finditer(r"```sh\n(.*?)```", section, re.S):
        if m.group(1).startswith(first_line):
            body = m.group(1).replace("\\\n", " ")
            out = []
            for line in body.splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()
                if line and not line.startswith("#"):
                    out.append(re.sub(r"\s+", " ", line))
            return out
    raise AssertionError("no ```sh block starting %r under %r in README.md"
                         % (first_line, heading))



def test_three_steps_verbatim(container, lab, deb):
    c = container
    cmds = readme_block("## Set up a node in three steps", "# 1. install the package")
    assert [x.split()[0] for x in cmds] == ["apt", "happac", "systemctl"], cmds
    # The README names the file `make deb` builds.
    assert cmds[0] == "apt install ./build/deb/%s" % os.path.basename(deb), cmds[0]
    # From scratch: no happac, no env file, no state.
    c.run(["systemctl", "stop", "happac", "happac@replica"], check=False)
    c.run(["dpkg", "--purge", "happac"], timeout=120)
    assert c.run(["test", "-e", "/etc/haproxy/happac.env"], check=False).rc == 1
    for cmd in cmds:
        r = c.run(["sh", "-ec", "cd /root && " + cmd.replace(README_ADDR, lab.addr)],
                  check=False, timeout=180)
        assert r.rc == 0, (cmd, r)
    s = c.show("happac", "ActiveState", "UnitFileState", "StatusText")
    assert s == {"ActiveState": "active", "UnitFileState": "enabled", "StatusText": "up"}, s
    assert agent(lab).startswith("up"), agent(lab)


def test_ctl_section_verbatim(node, lab):
    c = node
    cmds = readme_block("## Profiles, agent-send, operator overrides", "happac ctl drain")
    assert [x.split()[:3] for x in cmds] == [
        ["happac", "ctl", "drain"], ["happac", "ctl", "maint"],
        ["happac", "ctl", "ready"], ["happac", "ctl", "status"],
        ["happac", "ctl", "probe"], ["happac", "ctl", "stopping"]], cmds
    seen = []
    try:
        for cmd in cmds:
            r = c.run(["sh", "-ec", cmd])
            seen.append((cmd, r.out.strip(), agent(lab)))
        drain, maint, ramp, status, probe, stopping = seen
        assert drain[1].startswith("ok drain") and drain[2].split()[:2] == ["up", "drain"], drain
        assert maint[1].startswith("ok maint") and "maint" in maint[2].split(), maint
        assert ramp[1].startswith("ok ready") and re.search(r" \d+%\n$", ramp[2]), ramp
        assert '"admin":"ready"' in status[1] and '"ramp_ms":60000' in status[1], status
        # Patroni's callback and before_stop hook, through the unit's socket: a round
        # now (the line is unchanged), then down at once until Patroni's answer moves.
        assert probe[1] == "ok probe" and re.search(r"^up .*\d+%\n$", probe[2]), probe
        # (`ready` rides along while the ready window lasts: "down ready #...")
        assert stopping[1] == "ok stopping" and stopping[2].split()[0] == "down" and \
            stopping[2].endswith(" #patroni: stopping\n"), stopping
    finally:
        # `stopping` lasts until Patroni's answer moves (up to 60 s): a restart ends it.
        c.run(["systemctl", "restart", "happac"], timeout=60, check=False)
        c.run(["happac", "ctl", "ready"], check=False)
    assert agent(lab).startswith("up"), agent(lab)
