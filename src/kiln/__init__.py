"""kiln: build container images from Dockerfiles without a daemon and without privileges.

Programmatic use::

    import kiln
    result = kiln.build(context="app", destinations=["registry.example/app:1"])
    print(result.digest)

``kiln.build_image`` is the same function under a name type checkers understand. Names are
loaded on first use, so importing a small part of kiln (the sandbox's child process does) does not
import the whole builder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.builder.api import build_image
    from kiln.builder.builder import BuildResult
    from kiln.builder.options import BuildOptions, RegistryOptions
    from kiln.errors import KilnError

__all__ = ["BuildOptions", "BuildResult", "KilnError", "RegistryOptions", "build_image"]
__version__ = "0.1.0"

_LAZY = {
    "build_image": "kiln.builder.api",
    "BuildResult": "kiln.builder.builder",
    "BuildOptions": "kiln.builder.options",
    "RegistryOptions": "kiln.builder.options",
    "KilnError": "kiln.errors",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "build":  # kiln.build is kiln.build_image
        name = "build_image"
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kiln' has no attribute {name!r}")
