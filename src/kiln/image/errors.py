"""The one error kiln.image raises of its own: a malformed image document.

Why here and not in kiln.errors: that tree is shared and frozen for now, and a bad manifest or
config is neither a registry failure (no reference is known at this level) nor a layer problem.
``ImageFormatError`` is a ``KilnError``, so the CLI renders it and maps it to exit status 1.
Callers that know the image reference should catch it and re-raise with that context.
"""

from __future__ import annotations

from kiln.errors import KilnError


class ImageFormatError(KilnError):
    """A manifest, index, descriptor or config document is not what its media type promises."""
