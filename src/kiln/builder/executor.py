"""The executor: applies RUN, COPY/ADD and WORKDIR effects to one stage's rootfs.

Why one small class: it is the only place where the build touches a rootfs, runs a process or
writes a layer, so the snapshot discipline (baseline before, diff after, layer from exactly what
changed) is kept in one screenful. Layers go straight into the blob store.
"""

from __future__ import annotations

import logging
import os
import posixpath
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from kiln.builder import run_files
from kiln.builder.effects import CopyEffect, Effect, RunEffect, WorkdirEffect
from kiln.builder.resources import resource_errors
from kiln.builder.state import StageState
from kiln.context import BuildContext
from kiln.errors import RunFailedError
from kiln.fs import (
    BlobStore,
    GrowingFile,
    SourceFile,
    StageFilesystem,
    StoredLayer,
    lookup_file_owner,
    lookup_home,
    lookup_user,
    secure_join,
    write_layer,
)
from kiln.image import Layer, mediatypes
from kiln.sandbox import Runner, RunSpec

log = logging.getLogger("kiln")

# Mount points of the sandbox, and the files every backend provides from the host for the
# step's duration (bind mounts, or copies under chroot): never part of a layer, as in Docker.
SNAPSHOT_EXCLUDES = ("proc", "sys", "dev", "etc/hosts", "etc/resolv.conf")

SourceResolver = Callable[[str], tuple[BuildContext, bool]]


class StageExecutor:
    """Applies effects to `rootfs`, writing each resulting layer into `store`."""

    def __init__(
        self,
        stage_fs: StageFilesystem,
        store: BlobStore,
        runner: Runner,
        sources: SourceResolver,
        filename: str,
        scratch_dir: Path,
        source_date_epoch: int | None = None,
        *,
        compression: str = "gzip",
        compression_level: int | None = None,
        follow: Callable[[], GrowingFile | None] | None = None,
    ) -> None:
        self.fs = stage_fs  # where steps run, and how a step's diff is found
        self.rootfs = stage_fs.rootfs
        self.store = store
        self.runner = runner
        self.sources = sources
        self.filename = filename
        self.scratch_dir = scratch_dir
        self.source_date_epoch = source_date_epoch
        self.compression = compression
        self.compression_level = compression_level
        self.follow = follow  # who follows a layer blob as it is written (a pre-upload)

    def apply(self, state: StageState, effect: Effect, *, last: bool = False) -> Layer | None:
        """Apply one effect; return the layer it produced, or None if nothing changed.

        ``last``: nothing reads this rootfs after the step (see ``CopyJob.defer_files``).
        """
        if isinstance(effect, RunEffect):
            return self.run(state, effect)
        if isinstance(effect, CopyEffect):
            return self.copy(effect, defer_files=last)
        return self.workdir(effect)

    def run(self, state: StageState, effect: RunEffect) -> Layer | None:
        """RUN: execute in the sandbox, then snapshot what changed."""
        user = state.config.user or "0"
        uid, gid, groups = lookup_user(self.rootfs, user)
        env = with_home(effect.env, lambda: lookup_home(self.rootfs, user))
        cwd = state.config.working_dir or "/"
        with run_files.run_files(self.rootfs, effect.files):
            self.fs.begin((*SNAPSHOT_EXCLUDES, run_files.EXCLUDED))
            self._make_dirs(cwd, 0, 0)
            self._execute(effect, env, cwd, uid, gid, groups)
        return self._commit(None)

    def _execute(
        self,
        effect: RunEffect,
        env: tuple[str, ...],
        cwd: str,
        uid: int,
        gid: int,
        groups: tuple[int, ...],
    ) -> None:
        spec = RunSpec(
            rootfs=self.rootfs,
            argv=effect.argv,
            env=env,
            cwd=cwd,
            uid=uid,
            gid=gid,
            groups=groups,
            stdout=2,  # kiln's stderr: stdout carries only the digest a script captures
        )
        status = self.runner.run(spec)
        if status != 0:
            command = " ".join(effect.argv)
            raise RunFailedError(
                f'process "{command}" did not complete successfully: exit code: {status}',
                status=status,
            )

    def copy(self, effect: CopyEffect, *, defer_files: bool = False) -> Layer | None:
        """COPY/ADD: copy sources and write a layer from exactly the paths written."""
        # Loaded here: a build without COPY/ADD (RUN steps only) never needs it, nor what it
        # brings (archive handling, URL downloads, --chmod parsing): about 7 ms of imports
        # (`python3 -X importtime`, after kiln.builder.builder).
        from kiln.builder.copy_files import CopyJob

        if effect.heredocs:
            written = CopyJob(
                self.rootfs, effect, self.filename, protected=self.fs.protected
            ).copy_heredocs()
        else:
            source, keep_owner = self.sources(effect.from_ or "")
            job = CopyJob(
                self.rootfs,
                effect,
                self.filename,
                keep_owner=keep_owner,
                defer_files=defer_files,
                protected=self.fs.protected,
            )
            written = job.copy_from(source)
            if job.deferred:
                log.debug("COPY: %d files go into the layer from their sources", len(job.deferred))
            return self._commit(written, job.deferred)
        return self._commit(written)

    def workdir(self, effect: WorkdirEffect) -> Layer | None:
        """WORKDIR: create the directory (owned by USER, as Docker does) if it is missing.

        An unknown user name gives 0:0 here, as in BuildKit (``lookup_file_owner``).
        """
        if secure_join(self.rootfs, effect.path).is_dir():
            return self._commit([])  # BuildKit's mkdir -p still makes an (empty) layer
        uid, gid = lookup_file_owner(self.rootfs, effect.user) if effect.user else (0, 0)
        created = self._make_dirs(effect.path, uid, gid)
        return self._commit(created)

    def _make_dirs(self, path: str, uid: int, gid: int) -> list[str]:
        created: list[str] = []
        current = "/"
        for part in [p for p in path.split("/") if p]:
            target = secure_join(self.rootfs, posixpath.join(current, part))
            current = "/" + target.relative_to(self.rootfs).as_posix()
            protected = self.fs.protected
            if protected is not None and protected.covers(current):
                raise protected.refuse(f"directory {path}", current)
            if not target.is_dir():
                target.mkdir(mode=0o755)
                os.lchown(target, uid, gid)
                created.append(current.lstrip("/"))
        return created

    def _commit(
        self, written: list[str] | None, deferred: Mapping[str, SourceFile] | None = None
    ) -> Layer | None:
        """Write the step's diff (``written``: the paths COPY/WORKDIR wrote; None after RUN)."""
        root, changes = self.fs.diff(written)
        if not changes and not deferred:
            # BuildKit still gives every RUN/COPY/ADD/WORKDIR step a layer, empty or not, so
            # layer counts (and history) match `docker build`.
            log.info("No files changed in this step; writing an empty layer, as Docker does")
        with resource_errors("a layer blob", self.scratch_dir):  # a partial blob is removed
            fd, name = tempfile.mkstemp(suffix=".layer", dir=self.scratch_dir)  # parallel stages
            os.close(fd)
            tmp = Path(name)
            info = write_layer(
                root,
                changes,
                tmp,
                compression=self.compression,
                level=self.compression_level,
                source_date_epoch=self.source_date_epoch,
                sources=deferred,
                growing=self.follow() if self.follow is not None else None,
            )
            self.store.add_file(tmp, info.digest)
        self.fs.committed(info.diff_id)
        media_type = (
            mediatypes.OCI_LAYER_ZSTD
            if self.compression == "zstd"
            else mediatypes.DOCKER_LAYER_GZIP
        )
        return StoredLayer(info.digest, info.diff_id, info.size, media_type, self.store)


def with_home(env: tuple[str, ...], home: Callable[[], str]) -> tuple[str, ...]:
    """``env`` plus ``HOME=home()`` when it has no (or an empty) ``HOME``: runc's rule, which
    every isolation follows, so ``$HOME`` in RUN is what ``docker build`` gives (never set in
    the image config). An ``ENV HOME`` or build arg ``HOME`` wins."""
    if any(entry.startswith("HOME=") and entry != "HOME=" for entry in env):
        return env
    return (*(entry for entry in env if entry != "HOME="), f"HOME={home()}")
