"""Writing a built image where the options ask: pushed, a tarball, an OCI layout, name files.

Why apart from the build loop: checking the outputs before anything is built and writing them
at the end is one concern, the loop's first and last step; the loop only calls both.
"""

from __future__ import annotations

import io
import logging
from concurrent.futures import Future, wait

from kiln.builder.background import in_background
from kiln.builder.cancel import Cancellation
from kiln.builder.options import BuildOptions
from kiln.builder.output import write_layout, write_tarball
from kiln.builder.preupload import Preuploads
from kiln.builder.publish import (
    check_compression,
    check_push_permissions,
    publish,
    write_name_files,
)
from kiln.builder.registries import RegistryPool
from kiln.builder.resources import resource_errors
from kiln.image import Image

log = logging.getLogger("kiln")


def check_outputs(options: BuildOptions, pool: RegistryPool) -> None:
    """Fail before building when the outputs cannot work (format, push permission)."""
    check_compression(options.image_format, options.compression, options.compression_level)
    if not options.no_push and not options.registry.skip_push_permission_check:
        check_push_permissions(options.destinations, pool)


def write_outputs(
    image: Image,
    options: BuildOptions,
    pool: RegistryPool,
    uploads: Preuploads,
    cancellation: Cancellation,
) -> None:
    """Push ``image`` and write every file output ``options`` ask for."""
    if not options.no_push:
        config_uploads = _upload_config(image, options, pool)  # meanwhile the last layers finish
        # Waiting for the early layer uploads is already the push, as far as a user can tell.
        cancellation.activity = f"pushing to {', '.join(map(str, options.destinations))}"
        uploads.wait()  # then the push finds the layers present
        wait(config_uploads)  # and the config (whatever failed, the push does again)
        pinned = []
        for dest in options.destinations:
            cancellation.activity = f"pushing to {dest}"
            pinned.append(publish(image, dest, pool))
            cancellation.pushed.append(str(dest))
        write_name_files(
            pinned,
            options.image_name_with_digest_file,
            options.image_name_tag_with_digest_file,
        )
    if options.tar_path is not None:
        with resource_errors("the image tarball", options.tar_path.parent, "tar_path"):
            write_tarball(image, options.tar_path, options.destinations)
    if options.oci_layout_path is not None:
        tag = options.destinations[0].tag if options.destinations else None
        with resource_errors("the OCI layout", options.oci_layout_path, "oci_layout_path"):
            write_layout(image, options.oci_layout_path, tag or "latest")
    if options.digest_file is not None:
        with resource_errors("the digest file", options.digest_file.parent, "digest_file"):
            options.digest_file.write_text(image.digest)
    log.info("Built image; manifest digest %s", image.digest)


def _upload_config(image: Image, options: BuildOptions, pool: RegistryPool) -> list[Future[None]]:
    """Start uploading the config blob to every destination, in the background."""
    data = image.config

    def upload(registry: str, repository: str) -> None:
        client = pool.client(registry, push=True)
        client.upload_blob(repository, image.config_digest, len(data), lambda: io.BytesIO(data))

    targets = dict.fromkeys((d.registry, d.repository) for d in options.destinations)
    return [in_background("kiln-config-upload", upload, *target) for target in targets]
