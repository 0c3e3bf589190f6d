"""`make install` / `make uninstall` into a DESTDIR tree."""

import os
import subprocess
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make(*args):
    return subprocess.run(["make", "--no-print-directory", "-C", REPO] + list(args),
                          capture_output=True, text=True, timeout=300)


def test_install_and_uninstall_destdir():
    with tempfile.TemporaryDirectory(prefix="happac-destdir-") as root:
        r = make("install", "DESTDIR=" + root, "PREFIX=/usr")
        assert r.returncode == 0, r.stdout + r.stderr
        files = {
            "usr/bin/happac": 0o755,
            "usr/share/man/man8/happac.8": 0o644,
            "usr/lib/systemd/system/happac.service": 0o644,
            "usr/lib/systemd/system/happac@.service": 0o644,
            "etc/haproxy/happac.env": 0o644,
        }
        for rel, mode in files.items():
            path = os.path.join(root, rel)
            assert os.path.isfile(path), rel
            assert os.stat(path).st_mode & 0o777 == mode, rel
        unit = open(os.path.join(root, "usr/lib/systemd/system/happac.service")).read()
        assert "ExecStart=/usr/bin/happac -h ${PATRONI_HOST}" in unit
        settings = [l for l in unit.splitlines() if l and not l.startswith("#")]
        assert not [l for l in settings if "/usr/local" in l], settings
        out = subprocess.run([os.path.join(root, "usr/bin/happac"), "--version"],
                             capture_output=True, text=True, timeout=10)
        assert out.returncode == 0 and out.stdout.startswith("happac ")

        # An operator's env file is never overwritten by a later install.
        env = os.path.join(root, "etc/haproxy/happac.env")
        with open(env, "w") as f:
            f.write('PATRONI_HOST="10.0.0.9"\n')
        assert make("install", "DESTDIR=" + root, "PREFIX=/usr").returncode == 0
        assert open(env).read() == 'PATRONI_HOST="10.0.0.9"\n'

        r = make("uninstall", "DESTDIR=" + root, "PREFIX=/usr")
        assert r.returncode == 0, r.stdout + r.stderr
        left = sorted(os.path.relpath(os.path.join(d, f), root)
                      for d, _, fs in os.walk(root) for f in fs)
        assert left == ["etc/haproxy/happac.env"], left
