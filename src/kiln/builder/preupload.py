"""Pre-upload: each layer of the image being pushed starts uploading as soon as it exists.

Why: pushing only after the last step puts every upload on the build's critical path. Here a
layer (and the base image's layers, once pulled) goes to every destination in the background
while later steps run, so the final push mostly finds its blobs present (HEAD) and uploads
only what is left: the last layers, the config, the manifest.

The rules that keep a push what it was:
- only layers that will be in the pushed image are sent: those of the target stage's FROM
  chain (`from_chain`), never a builder stage's that only COPY --from reads;
- at most `TRANSFER_THREADS` uploads run at once, each streamed from the layer (`open_compressed`);
  a layer still in a registry (a base image's, a cache hit's) is mounted from its repository
  when the destination is on the same registry, else streamed from there, never downloaded;
- a layer being written (`follow`) goes up *while* it is written once its blob passes
  `STREAM_AFTER` (one upload chunk): each chunk leaves as soon as the compressor has put it in
  the file (one upload per destination, besides those above) and `offer` skips the layer
  later; a smaller blob is offered as usual, HEAD first. A layer the registry already has is
  then sent anyway (its digest is known only at the end), so only large layers are streamed;
- a failed pre-upload is only logged (debug): the final push uploads that blob again through
  `publish`, which retries and reports errors exactly as before, verifies every blob and only
  then puts the manifest;
- `wait()` (before the push) lets every started upload finish; `close()` (always) drops what has
  not started. Uploads still running after a failed build are abandoned on daemon threads, so
  a failure is reported at once rather than after a large upload.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping, Sequence

from kiln.builder.registries import TRANSFER_THREADS, RegistryPool
from kiln.builder.remote_layer import blob_opener, mount_source
from kiln.builder.stage_graph import find_stage
from kiln.dockerfile import Dockerfile, Stage, expand_word
from kiln.fs import GrowingFile
from kiln.image import Layer, mediatypes
from kiln.registry import Reference

log = logging.getLogger("kiln")

#: A layer blob larger than this uploads while it is written (one upload chunk).
STREAM_AFTER = 16 << 20

_Job = tuple[str, str, Layer]  # registry, repository, layer


def from_chain(
    dockerfile: Dockerfile, target: Stage, meta_env: Mapping[str, str]
) -> frozenset[int]:
    """The target stage and the stages it is built FROM, transitively: whose layers it keeps."""
    chain = {target.index}
    stage: Stage | None = target
    while stage is not None:
        image = expand_word(stage.from_.image, meta_env, dockerfile.escape)
        stage = None if image.isdigit() else find_stage(dockerfile.stages, image, stage.index)
        if stage is not None:
            chain.add(stage.index)
    return frozenset(chain)


class Preuploads:
    """Background uploads of finished layers to every destination (mutable: owns threads)."""

    def __init__(
        self,
        destinations: Sequence[Reference],
        pool: RegistryPool,
        threads: int = TRANSFER_THREADS,
        stream_after: int = STREAM_AFTER,
    ) -> None:
        self.targets = list(dict.fromkeys((d.registry, d.repository) for d in destinations))
        self.pool = pool
        self.stages: frozenset[int] = frozenset()
        self._threads = threads
        self._stream_after = stream_after
        self._workers: list[threading.Thread] = []
        self._streams: list[tuple[threading.Thread, GrowingFile]] = []
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._offered: set[str] = set()
        self._lock = threading.Lock()
        self._closed = False

    def watch(self, stages: frozenset[int]) -> None:
        """Upload the layers of these stages (see `from_chain`)."""
        self.stages = stages

    def offer(self, stage: int, layers: Sequence[Layer]) -> None:
        """Start uploading those of ``layers`` not started yet, if ``stage`` is watched."""
        if stage not in self.stages or not self.targets:
            return
        with self._lock:
            if self._closed:
                return
            for layer in layers:
                if layer.digest in self._offered or mediatypes.is_foreign_layer(layer.media_type):
                    continue
                self._offered.add(layer.digest)
                for registry, repository in self.targets:
                    self._queue.put((registry, repository, layer))
            while len(self._workers) < min(self._threads, self._queue.qsize()):
                worker = threading.Thread(target=self._work, name="kiln-preupload", daemon=True)
                worker.start()
                self._workers.append(worker)

    def follow(self, stage: int) -> GrowingFile | None:
        """A layer of ``stage`` is about to be written: what ``write_layer`` should tell as
        the blob grows, so it uploads meanwhile (None if ``stage``'s layers are not pushed)."""
        if stage not in self.stages or not self.targets:
            return None
        with self._lock:
            if self._closed:
                return None
            growing = GrowingFile(len(self.targets), on_finish=self._streamed)
            for registry, repository in self.targets:
                thread = threading.Thread(
                    target=self._stream,
                    args=(registry, repository, growing),
                    name="kiln-stream",
                    daemon=True,
                )
                thread.start()
                self._streams.append((thread, growing))
        return growing

    def wait(self) -> None:
        """Return once every offered or followed upload has finished (or failed)."""
        self._queue.join()
        for thread, _ in list(self._streams):
            thread.join()

    def close(self) -> None:
        """Drop uploads not started yet and let the workers end."""
        with self._lock:
            self._closed = True
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
                self._queue.task_done()
            for _ in self._workers:
                self._queue.put(None)
            for _, growing in self._streams:
                growing.failed()  # streams of a blob never finished stop waiting for it

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                self._upload(*job)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _upload(self, registry: str, repository: str, layer: Layer) -> None:
        try:
            client = self.pool.client(registry, push=True)
            mount = mount_source(layer, registry)
            client.upload_blob(
                repository, layer.digest, layer.size, blob_opener(layer), mount_from=mount
            )
            log.debug("Pre-uploaded %s to %s/%s", layer.digest, registry, repository)
        except Exception as exc:  # the final push uploads it again and reports its error
            where = f"{registry}/{repository}"
            log.debug("Pre-upload of %s to %s failed (push retries): %s", layer.digest, where, exc)

    def _streamed(self, digest: str, size: int) -> None:
        """A followed blob is complete (writer's thread, before ``offer`` can see it)."""
        if size > self._stream_after:
            with self._lock:
                self._offered.add(digest)  # the streams upload it

    def _stream(self, registry: str, repository: str, growing: GrowingFile) -> None:
        try:
            if growing.wait(self._stream_after + 1) <= self._stream_after:
                return  # complete and small: `offer` uploads it, HEAD first
            client = self.pool.client(registry, push=True)
            digest = client.upload_growing_blob(repository, growing)
            log.debug("Uploaded %s to %s/%s while it was written", digest, registry, repository)
        except Exception as exc:  # the final push uploads it again and reports its error
            where = f"{registry}/{repository}"
            log.debug("Upload of a layer being written to %s failed (push retries): %s", where, exc)
        finally:
            growing.release()
