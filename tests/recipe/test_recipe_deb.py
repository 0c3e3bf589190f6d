"""The Debian package: scripts/deb.sh (`make deb`) builds it with
dpkg-buildpackage, lintian finds no errors, and it installs into a scratch
root with dpkg, runs from there, and goes away again on remove and purge.

The scratch root keeps the machine out of it: dpkg --root with
--force-script-chrootless runs the maintainer scripts with DPKG_ROOT set
(deb-systemd-helper keeps its state inside the root; the postinst creates
the haproxy user only on a real install), and stubs for systemctl and
deb-systemd-invoke stand first on PATH in case systemd runs here.
"""

import os
import re
import shutil
import subprocess

import pytest

from recipe_util import REPO

NEEDED = {"dpkg-buildpackage": "dpkg-dev", "dpkg-checkbuilddeps": "dpkg-dev",
          "dh": "debhelper", "lintian": "lintian", "dpkg-deb": "dpkg"}


def makefile_version():
    with open(os.path.join(REPO, "Makefile")) as f:
        return re.search(r"^VERSION\s*:=\s*(\S+)", f.read(), re.M).group(1)


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    missing = sorted({pkg for tool, pkg in NEEDED.items() if not shutil.which(tool)})
    if missing:
        pytest.skip("Debian packaging tools missing: apt-get install %s" % " ".join(missing))
    out = tmp_path_factory.mktemp("deb")
    p = subprocess.run([os.path.join(REPO, "scripts", "deb.sh")], capture_output=True, text=True,
                       env=dict(os.environ, DEB_OUT=str(out)), timeout=900, cwd=REPO)
    assert p.returncode == 0, "scripts/deb.sh failed:\n%s\n%s" % (p.stdout, p.stderr)
    path = p.stdout.strip().splitlines()[-1]
    assert os.path.isfile(path) and path.endswith(".deb"), p.stdout
    return path


def dpkg_field(deb, field):
    return subprocess.run(["dpkg-deb", "-f", deb, field], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_control_fields(deb):
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert dpkg_field(deb, "Package") == "happac"
    assert dpkg_field(deb, "Version") == makefile_version()
    assert dpkg_field(deb, "Architecture") == arch
    depends = dpkg_field(deb, "Depends")
    # ${shlibs:Depends} resolved (libc6, libevent: what happac links), and
    # debian/control's libcurl4 and libpq5, which happac loads with dlopen()
    # for HTTPS to Patroni and --pg-conninfo (dpkg-shlibdeps cannot see them).
    for lib in ("libc6", "libcurl4", "libevent-2.1-7", "libpq5", "adduser"):
        assert re.search(r"(^|, )%s( |,|$)" % re.escape(lib), depends), depends


def test_contents(deb, tmp_path):
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True,
                             check=True).stdout
    files = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
    expected = {"/usr/bin/happac", "/lib/systemd/system/happac.service",
                "/etc/haproxy/happac.env", "/usr/share/doc/happac/copyright"}
    if os.path.exists(os.path.join(REPO, "man", "happac.8")):
        expected.add("/usr/share/man/man8/happac.8.gz")
    assert expected <= files, sorted(expected - files)
    ctrl = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", deb, str(ctrl)], check=True)
    assert (ctrl / "conffiles").read_text().split() == ["/etc/haproxy/happac.env"]
    postinst = (ctrl / "postinst").read_text()
    # Installed disabled: symlinks only where the admin had enabled it before.
    assert "systemctl enable" not in postinst
    for m in re.finditer(r"deb-systemd-helper enable", postinst):
        before = "\n".join(postinst[:m.start()].splitlines()[-3:])
        assert "was-enabled" in before, postinst


def test_lintian_reports_no_errors(deb):
    p = subprocess.run(["lintian", "--tag-display-limit", "0", deb], capture_output=True,
                       text=True, timeout=300)
    tags = [l for l in p.stdout.splitlines() if re.match(r"^[EWIPX]: ", l)]
    errors = [l for l in tags if l.startswith("E: ")]
    assert not errors, "\n".join(tags)


def _stubs(tmp_path):
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name in ("systemctl", "deb-systemd-invoke"):
        s = stubs / name
        s.write_text("#!/bin/sh\necho \"%s $*\" >> %s\nexit 0\n" % (name, tmp_path / "stubs.log"))
        s.chmod(0o755)
    return str(stubs)


def _dpkg(root, stubs, *args):
    env = dict(os.environ, PATH=stubs + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
    cmd = ["dpkg", "--root=%s" % root, "--force-script-chrootless", "--force-not-root",
           "--log=/dev/null"] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, "%s\n%s%s" % (" ".join(cmd), p.stdout, p.stderr)
    return p


def _files_outside_dpkg(root):
    out = []
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        if rel == "var/lib/dpkg" or rel.startswith("var/lib/dpkg/"):
            continue
        out += [os.path.join(rel, f) for f in files]
    return sorted(out)


def test_install_run_remove_purge(deb, tmp_path):
    root = tmp_path / "root"
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates"):
        (root / d).mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("")
    stubs = _stubs(tmp_path)

    # The scratch root has no libc6 etc. in its dpkg database: the machine's
    # libraries stand in for them.
    _dpkg(root, stubs, "--force-depends", "-i", deb)
    status = subprocess.run(["dpkg-query", "--root=%s" % root, "-W", "-f=${Status} ${Version}",
                             "happac"], capture_output=True, text=True, check=True).stdout
    assert status == "install ok installed %s" % makefile_version()

    binary = root / "usr/bin/happac"
    p = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("happac %s\n" % makefile_version()), p
    p = subprocess.run([str(binary), "recipe", "haproxy", "--scenario", "b", "--node",
                        "n1=10.0.0.1"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "agent-check agent-port 5555" in p.stdout

    # The packaged unit and env file are what the packaged recipe prints.
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for flag, path in (("--unit", "lib/systemd/system/happac.service"),
                       ("--env", "etc/haproxy/happac.env")):
        p = subprocess.run([str(binary), "recipe", "systemd", flag, "-h", "127.0.0.1", "-r",
                            "6432"], capture_output=True, text=True, env=clean, timeout=10)
        assert p.returncode == 0 and (root / path).read_text() == p.stdout
    unit = (root / "lib/systemd/system/happac.service").read_text()
    assert "\nExecStart=/usr/bin/happac -h ${PATRONI_HOST} " in unit
    assert "\nEnvironmentFile=/etc/haproxy/happac.env\n" in unit

    # Not enabled, not started.
    assert not (root / "etc/systemd/system/multi-user.target.wants/happac.service").exists()
    log = tmp_path / "stubs.log"
    assert not log.exists() or "start" not in log.read_text()

    # remove keeps the (edited) conffile, purge takes it too.
    env_file = root / "etc/haproxy/happac.env"
    env_file.write_text(env_file.read_text() + "HAPPAC_INTERVAL=\"2s\"\n")
    _dpkg(root, stubs, "--force-depends", "-r", "happac")
    assert not binary.exists()
    left = [f for f in _files_outside_dpkg(root) if not f.startswith("var/lib/systemd/")]
    assert left == ["etc/haproxy/happac.env"]
    assert "HAPPAC_INTERVAL" in env_file.read_text()
    _dpkg(root, stubs, "-P", "happac")
    assert _files_outside_dpkg(root) == []
    p = subprocess.run(["dpkg-query", "--root=%s" % root, "-W", "happac"], capture_output=True,
                       text=True)
    assert p.returncode != 0  # no longer known to dpkg
