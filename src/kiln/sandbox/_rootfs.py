"""Assemble the container's filesystem view and make it the process's ``/``.

Why: a RUN command expects a Linux-looking root (its own ``/proc``, a small ``/dev``, a read-only
``/sys``, working DNS) while everything it writes must land in the rootfs directory and nowhere
else. This runs in the helper's private mount namespace, so none of these mounts is visible to
the host, and all of them disappear when the namespace's last process exits.

Device nodes: Docker's device cgroup lets a container ``mknod`` anything but open only its
default devices. Without a cgroup of its own, kiln gets that effect with mount flags: the rootfs
is bound ``nodev`` and ``/dev`` is a ``nodev`` tmpfs in which each allowed node is a bind mount
of its own (the only mounts where device nodes open). A node the step makes, or one a base
image ships, can be created, listed and copied into a layer, but ``open`` fails (``EACCES``
where Docker says ``EPERM``).

The rootfs has already been checked by the parent (mount points are real directories, bound
files are regular files), so following paths here cannot leave it.
"""

from __future__ import annotations

import errno
import os
import stat

from kiln.sandbox import _libc
from kiln.sandbox._devices import DEVICES
from kiln.sandbox._namespaces import lacking_privilege
from kiln.sandbox._plan import SandboxPlan
from kiln.sandbox._report import from_os_error

_NOSUID_NODEV_NOEXEC = _libc.MS_NOSUID | _libc.MS_NODEV | _libc.MS_NOEXEC

_DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
    "core": "/proc/kcore",
}
# What runc makes read-only or hides in /proc, so root in a RUN step cannot reach the host kernel.
_PROC_READONLY = ("bus", "fs", "irq", "sys", "sysrq-trigger")
_PROC_MASKED = ("acpi", "kcore", "keys", "latency_stats", "timer_list", "sched_debug", "scsi")


def enter_rootfs(plan: SandboxPlan) -> None:
    """Mount everything into ``plan.rootfs`` and pivot into it. Must run in the new pid ns."""
    root = plan.rootfs
    mount_kernel_filesystems(root)
    for bind in plan.file_binds:
        target = f"{root}/{bind.target}"
        _mount(bind.source, target, None, _libc.MS_BIND, what=f"bind {bind.source} on {target}")
        _remount_readonly(target, _NOSUID_NODEV_NOEXEC)
    _pivot_root(root)


def mount_kernel_filesystems(root: str) -> None:
    """``/proc``, ``/dev`` (nodes, ``shm``, ``pts``) and a read-only ``/sys`` in ``root``, as
    ``docker build`` gives a RUN step (shared with the chroot helper, which mounts them too).

    ``root`` is first bound onto itself and made ``nodev``: only the nodes of Docker's default
    device set, bound into the fresh ``/dev``, open; nodes a step makes or the image ships do not
    (Docker's device cgroup, done with mount flags). Call it in the step's own mount namespace.
    """
    _mount(root, root, None, _libc.MS_BIND | _libc.MS_REC, what=f"bind {root} onto itself")
    _remount_nodev(root)
    _mount_proc(f"{root}/proc")
    _mount_dev(f"{root}/dev")
    _mount_sys(f"{root}/sys")


def _mount_proc(target: str) -> None:
    _mount("proc", target, "proc", _NOSUID_NODEV_NOEXEC, what=f"mount proc on {target}")
    for name in _PROC_READONLY:
        path = f"{target}/{name}"
        if os.path.exists(path):
            _mount(path, path, None, _libc.MS_BIND | _libc.MS_REC, what=f"bind {path}")
            _remount_readonly(path, _NOSUID_NODEV_NOEXEC)
    for name in _PROC_MASKED:
        path = f"{target}/{name}"
        if os.path.isdir(path):
            flags = _libc.MS_RDONLY | _NOSUID_NODEV_NOEXEC
            _mount("tmpfs", path, "tmpfs", flags, "size=0", what=f"mask {path}")
        elif os.path.exists(path):
            _mount("/dev/null", path, None, _libc.MS_BIND, what=f"mask {path}")


def _mount_dev(target: str) -> None:
    flags = _libc.MS_NOSUID | _libc.MS_NOEXEC  # devpts: its pty nodes must open
    dev_flags = _NOSUID_NODEV_NOEXEC  # nodes made in /dev later never open (Docker's cgroup)
    size = "mode=755,size=65536k"
    _mount("tmpfs", target, "tmpfs", dev_flags, size, what=f"mount tmpfs on {target}")
    for name, (major, minor) in DEVICES.items():
        _make_device(f"{target}/{name}", major, minor)
    pts = f"{target}/pts"
    os.mkdir(pts, 0o755)
    options = "newinstance,ptmxmode=0666,mode=0620"
    try:
        _libc.mount("devpts", pts, "devpts", flags, options + ",gid=5")
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise lacking_privilege(f"mount devpts on {pts}", exc) from exc
        # gid 5 (tty) does not exist in a single-id user namespace; ptys then belong to root.
        _mount("devpts", pts, "devpts", flags, options, what=f"mount devpts on {pts}")
    shm = f"{target}/shm"
    os.mkdir(shm, 0o755)
    shm_flags = _NOSUID_NODEV_NOEXEC
    _mount("shm", shm, "tmpfs", shm_flags, "mode=1777,size=65536k", what=f"mount tmpfs on {shm}")
    for name, link in _DEV_LINKS.items():
        os.symlink(link, f"{target}/{name}")


def _make_device(path: str, major: int, minor: int) -> None:
    """An allowed node in the ``nodev`` /dev: a bind mount of its own, without ``nodev``."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
        os.chmod(path, 0o666)
    except PermissionError:
        # Without CAP_MKNOD (e.g. in a user namespace) the host's node can still be bound; the
        # bind keeps the flags of the host's /dev, where nodes open.
        with open(path, "wb"):
            pass
        host = f"/dev/{os.path.basename(path)}"
        _mount(host, path, None, _libc.MS_BIND, what=f"bind {host} on {path}")
        return
    _mount(path, path, None, _libc.MS_BIND, what=f"bind {path} onto itself")
    flags = _libc.MS_BIND | _libc.MS_REMOUNT | _libc.MS_NOSUID | _libc.MS_NOEXEC
    _mount(None, path, None, flags, what=f"allow opening {path}")


def _mount_sys(target: str) -> None:
    flags = _libc.MS_RDONLY | _NOSUID_NODEV_NOEXEC
    try:
        _libc.mount("sysfs", target, "sysfs", flags)
        return
    except OSError:
        pass  # sysfs may refuse a fresh instance (network namespace rules); bind the host's
    _mount("/sys", target, None, _libc.MS_BIND | _libc.MS_REC, what=f"bind /sys on {target}")
    _remount_readonly(target, _NOSUID_NODEV_NOEXEC)


def _remount_nodev(path: str) -> None:
    """Add ``nodev`` to the bind mount at ``path``, repeating the flags it has (a remount that
    left one out would clear it, which a user namespace refuses for the flags it locked)."""
    have = os.statvfs(path).f_flag & (_libc.MS_RDONLY | _libc.MS_NOSUID | _libc.MS_NOEXEC)
    flags = _libc.MS_BIND | _libc.MS_REMOUNT | _libc.MS_NODEV | have
    _mount(None, path, None, flags, what=f"make device nodes in {path} unopenable")


def _remount_readonly(path: str, extra: int) -> None:
    flags = _libc.MS_BIND | _libc.MS_REMOUNT | _libc.MS_RDONLY | extra
    _mount(None, path, None, flags, what=f"make {path} read-only")


def _pivot_root(root: str) -> None:
    """Make ``root`` the new ``/`` and detach the old one, so no path leads back to the host."""
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY)
    new_root = os.open(root, os.O_DIRECTORY | os.O_RDONLY)
    try:
        os.fchdir(new_root)
        try:
            # runc's trick: stack the old root on top of the new one, then lazily detach it.
            _libc.pivot_root(".", ".")
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise lacking_privilege(f"pivot_root into {root}", exc) from exc
            # The host root cannot be pivoted away (e.g. it is an initramfs): chroot instead.
            os.chroot(".")
        else:
            os.fchdir(old_root)
            _libc.umount2(".", _libc.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old_root)
        os.close(new_root)


def _mount(
    source: str | None,
    target: str,
    fstype: str | None,
    flags: int,
    data: str | None = None,
    *,
    what: str,
) -> None:
    try:
        _libc.mount(source, target, fstype, flags, data)
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            raise lacking_privilege(what, exc) from exc
        raise from_os_error(what, exc) from exc


__all__ = ["enter_rootfs", "mount_kernel_filesystems"]
