"""A cache hit: the cached layer applied to the stage's filesystem in place of the step.

Why apply and not only record: later steps of the stage (a RUN after a cached COPY) and later
stages (COPY --from) read the stage's files, which must be what running the step would have
left. A hit itself reads nothing: ``LazyStage`` applies its layer only when a later step
reads the files of a stage made before the hit (else the layer is one of those the stage's
filesystem is made from). A blob from the local store is verified when the hit is found, one
from the registry cache while it downloads.
"""

from __future__ import annotations

import hashlib

from kiln.fs import BlobStore, StageFilesystem, StoredLayer, apply_layer
from kiln.image import Layer

_CHUNK = 1 << 20


def verified_layer(
    store: BlobStore, digest: str, diff_id: str, size: int, media_type: str
) -> Layer | None:
    """The stored blob ``digest`` as a layer, or None when it is missing or does not hash to
    ``digest`` (damaged, or half-written by a build that was killed)."""
    path = store.path(digest)
    hasher = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                hasher.update(chunk)
    except OSError:
        return None
    if "sha256:" + hasher.hexdigest() != digest:
        return None
    return StoredLayer(digest, diff_id, size, media_type, store)


def replay(stage_fs: StageFilesystem, layer: Layer) -> None:
    """Apply ``layer`` to the stage's root as the step's own diff, then start the next step.

    ``diff([])`` tells the snapshotter the tree changed behind its back (the walk snapshotter
    must not reuse its last scan); ``committed`` makes the overlay upper a lower, as after a
    step that ran.
    """
    with layer.open_uncompressed() as stream:
        apply_layer(stream, stage_fs.rootfs, protected=stage_fs.protected)
    stage_fs.diff([])
    stage_fs.committed(layer.diff_id)
