"""kiln.fs: paths and byte streams, the filesystem half of building an image.

Why a package of its own: unpacking layers, diffing a rootfs and writing layers all handle
untrusted paths and large byte streams, and share the same rules (secure joins, whiteouts,
deterministic headers). It knows nothing about registries or Dockerfiles and imports only
``kiln.errors``.
"""

from .accounts import lookup_chown, lookup_file_owner, lookup_home, lookup_user
from .blobstore import BlobStore, BlobWriter
from .layerstore import LayerStore, chain_id
from .layerstream import open_layer
from .layerwriter import (
    COMPRESSIONS,
    LayerInfo,
    SourceFile,
    write_layer,
    write_layer_from_paths,
)
from .overlay import OverlayRootfs, overlay_problem
from .overlaydiff import overlay_changes
from .protected import ProtectedPaths, remove_unprotected
from .securejoin import secure_join
from .snapshot import Changes, Snapshotter, WalkSnapshotter
from .stagefs import OverlayStage, StageFilesystem, WalkStage
from .storedlayer import StoredLayer
from .streams import GrowingFile, compression_threads
from .trees import remove_tree
from .unpack import apply_layer

__all__ = [
    "COMPRESSIONS",
    "BlobStore",
    "BlobWriter",
    "Changes",
    "GrowingFile",
    "LayerInfo",
    "LayerStore",
    "OverlayRootfs",
    "OverlayStage",
    "ProtectedPaths",
    "Snapshotter",
    "SourceFile",
    "StageFilesystem",
    "StoredLayer",
    "WalkSnapshotter",
    "WalkStage",
    "apply_layer",
    "chain_id",
    "compression_threads",
    "lookup_chown",
    "lookup_file_owner",
    "lookup_home",
    "lookup_user",
    "open_layer",
    "overlay_changes",
    "overlay_problem",
    "remove_tree",
    "remove_unprotected",
    "secure_join",
    "write_layer",
    "write_layer_from_paths",
]
