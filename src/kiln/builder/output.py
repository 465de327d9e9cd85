"""Saving the finished image: a `docker save` tarball and an OCI layout.

Why here: the image (``kiln.image.Image``, assembled once, so every destination, the tarball,
the layout and the digest file name the same digest) is written by ``kiln.image``; what the
build adds is the naming (destinations become tags) and telling the user what was written.
Pushing is ``publish.publish``, shared with `kiln push`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from kiln.image import Image, mediatypes, write_docker_archive, write_oci_layout
from kiln.registry import Reference

log = logging.getLogger("kiln")


def write_tarball(image: Image, path: Path, destinations: Sequence[Reference]) -> None:
    """A `docker save`-style archive, loadable by `docker load` and `podman load`.

    RepoTags must be `name:tag` for loaders to accept them, so a destination given without a tag
    is recorded with `:latest`, as Docker would push it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tags = [f"{ref.name}:{ref.tag or 'latest'}" for ref in destinations]
    write_docker_archive(path, image, repo_tags=tags)
    log.info("Wrote image tarball %s (manifest digest %s)", path, image.digest)


def write_layout(image: Image, path: Path, tag: str | None) -> None:
    """An OCI image layout directory (created, or extended with this image).

    It holds the very manifest the build printed and pushed, media types included: a layout of a
    `--image-format docker` build lists a Docker manifest, which `kiln push` and Kaniko-style
    tools read but skopeo and umoci do not; `--image-format oci` is how to get OCI media types.
    """
    write_oci_layout(path, image, tag=tag)
    log.info("Wrote OCI layout %s (manifest digest %s)", path, image.digest)
    if image.manifest_media_type == mediatypes.DOCKER_MANIFEST:
        log.info(
            "The layout holds a Docker v2 schema 2 manifest (as the pushed image); skopeo and "
            "umoci read only OCI manifests from a layout: build with the OCI image format "
            "(image format oci) for them"
        )
