"""kiln.sandbox: execute RUN steps in an isolated view of a rootfs.

Why a package: the build loop only knows the one-method :class:`Runner` protocol and the
:class:`RunSpec` value; each isolation backend (``namespaces``, ``chroot``, ``inplace``)
implements it without callers branching on which one they have. ``userns`` re-executes kiln in
a user namespace, where the ``namespaces`` backend then works for a non-root user.
"""

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
]
