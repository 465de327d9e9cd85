"""``Image``: one single-platform image as what defines it -- manifest, config, layers.

Why one value: a build's result, an image read back from an OCI layout or a ``docker save``
tarball, and (later) each platform of a multi-platform build are pushed, written as a layout
and written as an archive by the same code. That code needs the exact manifest and config bytes
(their digests are the image's identity) and the layers, each able to open its own bytes
(``Layer``), wherever they live. ``assemble_image`` makes one from a config and layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kiln.errors import Remedy, UsageError
from kiln.image import mediatypes as mt
from kiln.image.config import ImageConfig
from kiln.image.descriptor import Descriptor
from kiln.image.digest import digest_of
from kiln.image.layer import Layer
from kiln.image.manifest import build_manifest


@dataclass(frozen=True)
class Image:
    """The bytes that define an image, and the layers its manifest names (base first).

    ``digest`` and ``config_digest`` are computed from the bytes, never given, so they cannot
    disagree with them.
    """

    manifest: bytes
    manifest_media_type: str
    config: bytes
    layers: tuple[Layer, ...]
    digest: str = field(init=False)
    config_digest: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", digest_of(self.manifest))
        object.__setattr__(self, "config_digest", digest_of(self.config))

    @property
    def format(self) -> mt.ImageFormat:
        """``"docker"`` or ``"oci"``: the media-type family of the manifest."""
        return mt.image_format(self.manifest_media_type)


def assemble_image(config: ImageConfig, layers: Sequence[Layer], fmt: str) -> Image:
    """Serialise config and manifest in Docker v2s2 (``docker``) or OCI (``oci``) form.

    Layer media types follow the format (the blob bytes stay the same: gzip is gzip in both).
    """
    config_bytes = config.to_json()
    config_descriptor = Descriptor(
        mt.config_media_type(fmt), digest_of(config_bytes), len(config_bytes)
    )
    layer_descriptors = [
        Descriptor(_layer_media_type(layer.media_type, fmt), layer.digest, layer.size)
        for layer in layers
    ]
    manifest = build_manifest(config_descriptor, layer_descriptors, fmt)
    return Image(manifest, mt.manifest_media_type(fmt), config_bytes, tuple(layers))


_EQUIVALENT_LAYER_TYPES = (
    (mt.DOCKER_LAYER_GZIP, mt.OCI_LAYER_GZIP),
    (mt.DOCKER_LAYER, mt.OCI_LAYER),
    (mt.DOCKER_FOREIGN_LAYER, mt.OCI_NONDISTRIBUTABLE_LAYER_GZIP),
)


def _layer_media_type(media_type: str, fmt: str) -> str:
    """Map a layer's media type to the output format; the blob bytes stay the same."""
    for docker, oci in _EQUIVALENT_LAYER_TYPES:
        if media_type in (docker, oci):
            return oci if fmt == "oci" else docker
    if fmt != "oci" and "zstd" in media_type:
        raise UsageError(
            "the image has zstd-compressed layers, which Docker v2 schema 2 cannot describe",
            hint="add {0}",
            remedies=(Remedy("image_format", "oci"),),
        )
    return media_type
