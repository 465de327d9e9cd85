"""What a RUN step must see in `/` — Docker's /proc, /dev and /sys — checked from inside a build.

Why shared: every isolation must give a step the same (issue 10.15: a chroot without CAP_MKNOD
ran steps without /dev/zero, so `dd if=/dev/zero ... | sha256sum` hashed empty input and
`2>/dev/null` wrote a regular file into the image). A Dockerfile runs `RUN mkdir /out &&
KERNEL_FILES_CHECK`; the test then reads what it recorded from the built image's rootfs.
"""

from __future__ import annotations

from pathlib import Path

#: sha256 of 512 MiB of zeros (`head -c 536870912 /dev/zero | sha256sum`).
ZEROS_512M_SHA256 = "9acca8e8c22201155389f65abbf6bc9723edc7384ead80503839f49dcc56d767"

KERNEL_FILES_CHECK = (
    "ls /proc/self/ > /out/proc-self"
    " && for d in null zero full random urandom tty; do test -c /dev/$d || echo no-$d; done"
    " > /out/devices"
    " && test -d /dev/shm && test -d /dev/pts && test -d /sys/kernel && echo ok > /out/dirs"
    " && dd if=/dev/zero bs=1M count=512 2>/dev/null | sha256sum > /out/zeros"
    " && echo quiet > /dev/null && head -c 4 /dev/urandom | wc -c > /out/urandom"
)


def check_kernel_files(rootfs: Path) -> None:
    """Assert what KERNEL_FILES_CHECK recorded under /out, and that none of it left a file."""
    out = rootfs / "out"
    assert "status" in (out / "proc-self").read_text().split()  # /proc/self is a real procfs
    assert (out / "devices").read_text() == ""  # every device is a character device
    assert (out / "dirs").read_text() == "ok\n"
    assert (out / "zeros").read_text().split()[0] == ZEROS_512M_SHA256
    assert (out / "urandom").read_text().strip() == "4"
    for gone in ("dev", "proc", "sys"):  # `2>/dev/null` and friends wrote nothing to a layer
        assert not (rootfs / gone).exists(), gone
