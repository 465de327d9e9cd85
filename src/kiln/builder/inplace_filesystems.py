"""Stage filesystems for the inplace isolation: every stage in `/` itself, one after another.

Why apart from `stage_filesystems`: here a stage's root is the container's own `/`, so making a
stage means wiping `/` (all but the protected paths) and unpacking its base over it; nothing
stays beside it. What a later stage copies from (`COPY --from=stage` or an image) is therefore
unpacked again into a directory of its own under the kiln dir, and `--cleanup` puts the
container back when the build ends, also when it fails. The rules themselves (which paths are
protected, how `/` is reset, filtered and restored) live in `inplace_root`; this module applies
them to one build: kiln's work dir, cache, local context and outputs are protected too, and
temporary files (fetched contexts) go under the kiln dir instead of the doomed `/tmp`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from kiln.builder.inplace_root import (
    IgnoredPaths,
    check_container,
    ignored_paths,
    reset,
    restore,
    save,
    unpack,
)
from kiln.builder.isolation import select_runner
from kiln.builder.options import BuildOptions
from kiln.builder.workspace import Workspace
from kiln.closeable import Closeable
from kiln.errors import BuildError, Remedy
from kiln.fs import Changes, StageFilesystem, WalkStage, apply_layer
from kiln.image import Layer
from kiln.sandbox import Runner

log = logging.getLogger("kiln")


class InplaceFilesystems(Closeable):
    """Makes each stage's filesystem by resetting `root` (the container's `/`) in place."""

    def __init__(
        self,
        options: BuildOptions,
        workspace: Workspace,
        *,
        reason: str = "chosen with --isolation",
        root: Path = Path("/"),
        mountinfo: str | None = None,
    ) -> None:
        self.reason = reason  # why the build runs in `root` itself (`isolation.inplace_reason`)
        self.root = Path(os.path.abspath(root))
        self.workspace = workspace
        self.cleanup = options.cleanup
        log.info("Inplace: building in %s (%s)", self.root, check_container(options.force, root))
        kiln_dir = _inside(self.root, options.kiln_dir)
        if kiln_dir is None:
            raise BuildError(
                f"kiln's directory {options.kiln_dir} is not inside the build root {self.root}",
                hint="give the directory that holds kiln itself, e.g. {0}",
                remedies=[Remedy("kiln_dir", "/kiln")],
            )
        inside = (_inside(self.root, path) for path in _kept(options, workspace))
        protected = [rel for rel in inside if rel]
        self.ignored: IgnoredPaths = ignored_paths(
            self.root,
            kiln_dir,
            [*protected, *(p.strip("/") for p in options.ignore_paths)],
            ignore_var_run=options.ignore_var_run,
            mountinfo=mountinfo,
        )
        kept = ", ".join(sorted("/" + p for p in self.ignored.paths))
        log.info("Inplace: never touched: %s", kept)
        self._saved: Path | None = None
        self._sources: dict[tuple[str, ...], Path] = {}
        temp = workspace.root / "tmp"
        temp.mkdir(exist_ok=True)
        self._old_tempdir, tempfile.tempdir = tempfile.tempdir, str(temp)

    #: The last COPY's files are created for real: the root stays as the build leaves it.
    defers_files = False
    #: `/` is each stage's root in turn: made at the stage's start, every cache hit applied.
    lazy = False
    #: Closing puts the root back (``--cleanup``), which the outputs, kept in it, wait for.
    closes_before_outputs = False

    def prepare(self) -> None:
        """Nothing to probe: `/` is the root, and the walk snapshotter the only one."""

    def jobs(self, requested: int | None) -> int:
        """One stage at a time: there is only one `/`."""
        return 1

    def runner(self, isolation: str) -> Runner:
        """RUN in `/` too, whatever `auto` would have picked for a directory."""
        return select_runner(isolation, self.reason)

    def create(self, layers: Sequence[Layer], label: str) -> StageFilesystem:
        """Wipe the root but its protected paths, then unpack ``layers`` over it."""
        if self.cleanup and self._saved is None:
            saved = self.workspace.root / "before-build.layer"
            save(self.root, self.ignored, saved)
            self._saved = saved
            log.info("Inplace: saved %s for --cleanup", self.root)
        log.info("[stage %s] replacing %s with the stage's base", label, self.root)
        reset(self.root, self.ignored)
        for layer in layers:
            unpack(self.workspace.store.path(layer.digest), self.root, self.ignored)
        return InplaceStage(self.root, self.ignored)

    def detached(self, layers: Sequence[Layer], label: str) -> Path:
        """A directory of its own (under the work dir) holding ``layers``: a COPY --from source."""
        key = tuple(layer.diff_id for layer in layers)
        if key not in self._sources:
            directory = self.workspace.new_rootfs(label)
            for layer in layers:
                with layer.open_uncompressed() as stream:
                    apply_layer(stream, directory)
            self._sources[key] = directory
        return self._sources[key]

    def stage_source(self, rootfs: Callable[[], Path], layers: Sequence[Layer], label: str) -> Path:
        """Where COPY --from=<stage> reads: the root was reset since, so its layers, unpacked."""
        return self.detached(layers, f"from-{label}")

    def close(self) -> None:
        """With ``--cleanup``, put the root back as it was before the first stage."""
        tempfile.tempdir = self._old_tempdir
        if self._saved is not None:
            log.info("Inplace: restoring %s (--cleanup)", self.root)
            restore(self.root, self.ignored, self._saved)
            self._saved = None


class InplaceStage:
    """The root itself as a stage's filesystem: the walk snapshotter, blind to protected paths."""

    def __init__(self, root: Path, ignored: IgnoredPaths) -> None:
        self._walk = WalkStage(root)
        self._ignored = ignored

    @property
    def rootfs(self) -> Path:
        return self._walk.rootfs

    @property
    def protected(self) -> IgnoredPaths:
        return self._ignored

    def begin(self, exclude: Iterable[str]) -> None:
        self._walk.begin((*exclude, *self._ignored.paths))

    def diff(self, written: Sequence[str] | None) -> tuple[Path, Changes]:
        clash = sorted(p for p in written or () if self._ignored.covers(p))
        if clash:
            raise BuildError(
                f"COPY/ADD wrote into /{clash[0]}, which the inplace isolation keeps out of "
                "every image (kiln's own directory, a mount or an ignored path)",
                hint="copy to another destination, or use {0} or {1}",
                remedies=[Remedy("isolation", "chroot"), Remedy("isolation", "namespaces")],
            )
        return self._walk.diff(written)

    def committed(self, diff_id: str) -> None:
        self._walk.committed(diff_id)

    def close(self) -> None:
        self._walk.close()


def _kept(options: BuildOptions, workspace: Workspace) -> Iterator[Path]:
    """kiln's own paths for this build that may lie outside the kiln dir."""
    yield workspace.root
    context = _local_context(options.context)
    if context is not None:
        yield context
    for path in (
        options.cache_dir,
        options.tar_path,
        options.oci_layout_path,
        options.digest_file,
        options.image_name_with_digest_file,
        options.image_name_tag_with_digest_file,
    ):
        if path is not None:
            yield path


def _local_context(spec: str) -> Path | None:
    if spec.startswith("dir://"):
        return Path(spec[len("dir://") :])
    if spec == "-" or "://" in spec or spec.startswith("git@"):
        return None  # fetched into the work dir
    return Path(spec)


def _inside(root: Path, path: Path | str) -> str | None:
    """``path`` relative to ``root`` (no leading `/`), or None if it lies elsewhere."""
    absolute = os.path.abspath(path)
    if absolute == str(root):
        return None
    prefix = str(root).rstrip("/") + "/"
    return absolute[len(prefix) :] if absolute.startswith(prefix) else None
