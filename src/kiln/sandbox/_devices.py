"""The character devices a RUN step finds in /dev, as Docker provides them.

Why a module of its own: the namespaces backend (bind or mknod in a fresh /dev) and the chroot
backend (mknod into the rootfs for the step) must offer the same set, so the table lives once.
"""

from __future__ import annotations

#: name -> (major, minor)
DEVICES = {
    "null": (1, 3),
    "zero": (1, 5),
    "full": (1, 7),
    "random": (1, 8),
    "urandom": (1, 9),
    "tty": (5, 0),
}
