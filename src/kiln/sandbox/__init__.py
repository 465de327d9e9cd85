"""kiln.sandbox: execute RUN steps in an isolated view of a rootfs.

Why a package: the build loop only knows the one-method :class:`Runner` protocol and the
:class:`RunSpec` value; each isolation backend (``namespaces``, ``chroot``, ``inplace``)
implements it without callers branching on which one they have. ``userns`` re-executes kiln in
a user namespace, where the ``namespaces`` backend then works for a non-root user.

The names below are loaded on first use: the sandbox fork server (``_forkserver``) imports this
package too, and should pay only for the helper modules it runs, not for every backend.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.sandbox.chroot import ChrootRunner
    from kiln.sandbox.inplace import InplaceRunner
    from kiln.sandbox.namespaces import NamespacesRunner
    from kiln.sandbox.spec import BinarySink, Output, Runner, RunSpec

__all__ = [
    "BinarySink",
    "ChrootRunner",
    "InplaceRunner",
    "NamespacesRunner",
    "Output",
    "RunSpec",
    "Runner",
    "stop_running_steps",
]

_LAZY = {
    "BinarySink": "kiln.sandbox.spec",
    "ChrootRunner": "kiln.sandbox.chroot",
    "InplaceRunner": "kiln.sandbox.inplace",
    "NamespacesRunner": "kiln.sandbox.namespaces",
    "Output": "kiln.sandbox.spec",
    "RunSpec": "kiln.sandbox.spec",
    "Runner": "kiln.sandbox.spec",
}


def stop_running_steps() -> None:
    """Kill every RUN step this process runs now, their whole process trees (to stop a build).

    Safe in a signal handler: it imports nothing (without the fork client loaded, no step
    runs) and takes no lock a signal could have interrupted the holder of.
    """
    client = sys.modules.get("kiln.sandbox._forkclient")
    if client is not None:
        client.stop_running_steps()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'kiln.sandbox' has no attribute {name!r}")
