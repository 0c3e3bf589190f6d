"""What the suite says when it cannot get a container: one line naming the cause,
as a failure (the fixtures turn SetupError into pytest.fail), never a skip."""

import os

import pytest

from container import Container, SetupError, build_rootfs, mounts_under, nspawn_pids


def one_line(e):
    text = str(e.value)
    assert "\n" not in text and text, repr(text)
    return text


def test_debootstrap_without_network(tmp_path):
    root = str(tmp_path / "root")
    with pytest.raises(SetupError) as e:
        build_rootfs(root, wrapper=["unshare", "-n"])  # a network namespace with nothing in it
    assert one_line(e).startswith("rootfs: debootstrap bookworm failed: "), str(e.value)
    assert not os.path.exists(root) and not os.path.exists(root + ".new")


def test_missing_systemd_nspawn(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SetupError) as e:
        Container(str(tmp_path), str(tmp_path / "console.log")).boot()
    assert one_line(e).startswith("systemd-nspawn is not installed"), str(e.value)


def test_container_that_does_not_boot(tmp_path):
    root = tmp_path / "not-an-os"
    root.mkdir()
    c = Container(str(root), str(tmp_path / "console.log"))
    with pytest.raises(SetupError) as e:
        c.boot()
    assert one_line(e).startswith("the container did not boot: systemd-nspawn exited "), \
        str(e.value)
    assert "os-release" in str(e.value)  # nspawn's own reason, from its output
    assert not nspawn_pids(str(root)) and not mounts_under(str(root))
