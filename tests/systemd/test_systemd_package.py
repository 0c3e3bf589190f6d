"""The package in the booted container, with the unit running: reinstalling the
same version and upgrading to a rebuilt newer one keep the operator's env file
and an override in force; remove keeps /var/lib/happac, purge takes it."""

import os
import subprocess

from sd_util import agent



def rebuilt(deb, tmp_path, version):
    """The same package with a newer version, as a rebuild with a new changelog
    entry would give."""
    tree = tmp_path / "tree"
    subprocess.run(["dpkg-deb", "-R", deb, str(tree)], check=True, timeout=60)
    control = tree / "DEBIAN" / "control"
    text = control.read_text()
    old = [l for l in text.splitlines() if l.startswith("Version: ")][0]
    control.write_text(text.replace(old, "Version: " + version))
    out = tmp_path / ("happac_%s.deb" % version)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(out)], check=True,
                   capture_output=True, timeout=120)
    return str(out)


def test_reinstall_upgrade_remove_purge(node, lab, deb, tmp_path):
    c = node
    base = subprocess.run(["dpkg-deb", "-f", deb, "Version"], capture_output=True, text=True,
                          check=True).stdout.strip()
    newer = rebuilt(deb, tmp_path, base + "+rebuild1")
    with open(newer, "rb") as src, open(c.path("/root/" + os.path.basename(newer)), "wb") as dst:
        dst.write(src.read())
    env_path = "/etc/haproxy/happac.env"
    with open(c.path(env_path), "a") as f:
        f.write('HAPPAC_INTERVAL="900ms"\n')
    with open(c.path(env_path)) as f:
        env = f.read()
    c.run(["systemctl", "restart", "happac"], timeout=30)
    try:
        assert c.run(["happac", "ctl", "drain"]).out.startswith("ok drain")
        for pkg, version in (("/root/build/deb/" + os.path.basename(deb), base),
                             ("/root/build/deb/" + os.path.basename(deb), base),
                             ("/root/" + os.path.basename(newer), base + "+rebuild1")):
            pid = c.show("happac", "MainPID")["MainPID"]
            r = c.run(["dpkg", "-i", pkg], timeout=180)
            assert "happac.env" not in r.out, r  # no conffile question
            assert c.run(["dpkg-query", "-W", "-f=${Version}", "happac"]).out == version
            with open(c.path(env_path)) as f:
                assert f.read() == env
            # The running unit was restarted by the upgrade and is still drained.
            s = c.show("happac", "ActiveState", "MainPID")
            assert s["ActiveState"] == "active" and s["MainPID"] not in ("0", pid), (pid, s)
            assert agent(lab).split()[:2] == ["up", "drain"], (version, agent(lab))
            assert '"admin":"drain"' in c.run(["happac", "ctl", "status"]).out
        assert "interval=900ms" in c.journal("happac")
        # remove: the state (and the env file) stay; purge: both go.
        c.run(["systemctl", "stop", "happac"], timeout=30)
        c.run(["dpkg", "-r", "happac"], timeout=120)
        assert c.run(["test", "-e", "/usr/bin/happac"], check=False).rc == 1
        state = c.run(["cat", "/var/lib/happac/state"]).out
        assert "admin = drain" in state, state
        with open(c.path(env_path)) as f:
            assert f.read() == env
        c.run(["dpkg", "-P", "happac"], timeout=120)
        for gone in ("/var/lib/happac", env_path, "/lib/systemd/system/happac.service"):
            assert c.run(["test", "-e", gone], check=False).rc == 1, gone
    finally:
        # Back to the package from `make deb` (the `node` fixture does the rest).
        c.run(["dpkg", "-P", "happac"], check=False, timeout=120)
        c.run(["dpkg", "-i", "/root/build/deb/" + os.path.basename(deb)], timeout=180)
