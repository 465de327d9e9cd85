"""kiln.fs: paths and byte streams, the filesystem half of building an image.

Why a package of its own: unpacking layers, diffing a rootfs and writing layers all handle
untrusted paths and large byte streams, and share the same rules (secure joins, whiteouts,
deterministic headers). It knows nothing about registries or Dockerfiles and imports only
``kiln.errors``.
"""

from .accounts import lookup_chown, lookup_user
from .blobstore import BlobStore, BlobWriter
from .layerstream import open_layer
from .layerwriter import LayerInfo, write_layer, write_layer_from_paths
from .securejoin import secure_join
from .snapshot import Changes, Snapshotter, WalkSnapshotter
from .unpack import apply_layer

__all__ = [
    "BlobStore",
    "BlobWriter",
    "Changes",
    "LayerInfo",
    "Snapshotter",
    "WalkSnapshotter",
    "apply_layer",
    "lookup_chown",
    "lookup_user",
    "open_layer",
    "secure_join",
    "write_layer",
    "write_layer_from_paths",
]
