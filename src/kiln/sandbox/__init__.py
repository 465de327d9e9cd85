"""kiln.sandbox: execute RUN steps in an isolated view of a rootfs.

Why a package: the build loop only knows the one-method :class:`Runner` protocol and the
:class:`RunSpec` value; each isolation backend (``namespaces`` today; ``chroot`` and rootless
user namespaces later) implements it without callers branching on which one they have.
"""

from kiln.sandbox.namespaces import NamespacesRunner
from kiln.sandbox.spec import BinarySink, Output, Runner, RunSpec

__all__ = ["BinarySink", "NamespacesRunner", "Output", "RunSpec", "Runner"]
