"""What the RUN process cannot see or reach: host processes, host /, host mounts, the network."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.sandbox.support import host_processes_matching, mountinfo

pytestmark = pytest.mark.root

RunSh = Callable[..., tuple[int, str]]


def test_only_the_containers_processes_are_visible(run_sh: RunSh) -> None:
    # `echo` and the glob are shell built-ins: no extra process appears while listing.
    status, out = run_sh("echo /proc/[0-9]*")
    assert status == 0
    assert out.split() == ["/proc/1", "/proc/2"]


def test_pid_one_is_the_sandbox_init_and_the_command_its_child(run_sh: RunSh) -> None:
    assert run_sh("echo $$ $PPID") == (0, "2 1\n")


def test_hostname_is_set(run_sh: RunSh) -> None:
    assert run_sh("hostname") == (0, "kiln\n")
    assert run_sh("hostname", hostname="builder-1") == (0, "builder-1\n")
    assert os.uname().nodename not in ("kiln", "builder-1")


def test_background_children_are_killed_when_the_command_exits(run_sh: RunSh) -> None:
    marker = "4127"  # an unusual duration, so we can find the process by its argv
    started = time.monotonic()
    status, out = run_sh(f"sleep {marker} & echo started")
    assert (status, out) == (0, "started\n")
    assert time.monotonic() - started < 10
    assert host_processes_matching(f"sleep\0{marker}") == []


def test_background_child_holding_the_output_does_not_hang(run_sh: RunSh) -> None:
    # The orphan keeps the output pipe open; only killing it lets run() see EOF.
    status, _ = run_sh("(sleep 4128; echo late) & exit 0")
    assert status == 0
    assert host_processes_matching("sleep\x004128") == []


def test_writes_to_slash_land_in_the_rootfs(run_sh: RunSh, rootfs: Path) -> None:
    assert run_sh("echo inside > /kiln-marker && cat /kiln-marker") == (0, "inside\n")
    assert (rootfs / "kiln-marker").read_text() == "inside\n"
    assert not Path("/kiln-marker").exists()


def test_no_path_leads_out_of_the_rootfs(run_sh: RunSh) -> None:
    status, out = run_sh("cd /../../..; ls /; ls /proc/1/root/ | grep -c usr || true")
    assert status == 0
    assert "usr" not in out.split()[:-1]  # busybox rootfs has no /usr; the host has one
    assert out.split()[-1] == "0"


def test_host_mount_table_is_unchanged(run_sh: RunSh, rootfs: Path) -> None:
    before = set(mountinfo())
    status, out = run_sh("grep -c . /proc/self/mountinfo")
    assert status == 0 and int(out) > 5  # proc, dev, pts, shm, sys, resolv.conf... inside
    after = set(mountinfo())
    # Other test suites may mount things concurrently; none of ours may appear or linger.
    assert [m for m in after - before if str(rootfs) in m] == []
    assert [m for m in after if str(rootfs) in m] == []


def test_container_mounts(run_sh: RunSh) -> None:
    status, out = run_sh("cat /proc/self/mountinfo")
    assert status == 0
    mounts = {}
    for line in out.splitlines():
        fields, fs_fields = line.split(" - ")
        mounts[fields.split()[4]] = fs_fields.split()[0]
    assert mounts["/proc"] == "proc"
    assert mounts["/dev"] == "tmpfs"
    assert mounts["/dev/pts"] == "devpts"
    assert mounts["/dev/shm"] == "tmpfs"
    assert mounts["/sys"] == "sysfs"
    assert "/etc/resolv.conf" in mounts
    assert "/etc/hosts" in mounts


def test_dev_has_the_usual_devices(run_sh: RunSh) -> None:
    script = (
        "head -c 4 /dev/zero | od -An -tx1; head -c 16 /dev/urandom | wc -c;"
        " echo x > /dev/null && echo null-ok; readlink /dev/fd; test -c /dev/tty && echo tty"
    )
    status, out = run_sh(script)
    assert status == 0
    assert out.split() == ["00", "00", "00", "00", "16", "null-ok", "/proc/self/fd", "tty"]


def test_sys_is_read_only(run_sh: RunSh) -> None:
    status, out = run_sh("test -d /sys/kernel && touch /sys/kiln 2>&1; echo $?")
    assert "Read-only file system" in out
    assert out.split()[-1] != "0"
    assert status == 0


def test_root_in_run_cannot_mount_or_poke_the_kernel(run_sh: RunSh) -> None:
    status, out = run_sh(
        "mkdir /mnt; mount -t tmpfs t /mnt 2>/dev/null && echo mounted;"
        " (echo 1 > /proc/sys/kernel/printk) 2>/dev/null && echo wrote-sysctl;"
        " cat /proc/kcore 2>/dev/null | head -c 1 | wc -c; echo done"
    )
    assert (status, out.split()) == (0, ["0", "done"])


def test_network_none_has_only_loopback_and_it_is_up(run_sh: RunSh) -> None:
    status, out = run_sh(
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; ifconfig lo | grep -o UP",
        network="none",
    )
    assert (status, out) == (0, "lo\nUP\n")


def test_network_host_shares_the_hosts_interfaces(run_sh: RunSh) -> None:
    with open("/proc/net/dev", encoding="ascii") as f:
        host = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    status, out = run_sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
    assert status == 0
    assert sorted(out.split()) == host
