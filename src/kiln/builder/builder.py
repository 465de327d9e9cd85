"""The build loop: Dockerfile + context in, an image (pushed, saved, or both) out.

Why it is short: parsing, dispatch, effects, snapshots and outputs each live in their own module;
this one only wires them in order, so the whole build reads on one screen.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from kiln.builder.background import in_background
from kiln.builder.cache_setup import open_build_cache
from kiln.builder.cancel import Cancellation
from kiln.builder.dispatch import PROXY_ARGS, DispatchContext, refuse_unsupported
from kiln.builder.executor import StageExecutor
from kiln.builder.filesystems import Filesystems, open_filesystems, open_workspace
from kiln.builder.image_outputs import check_outputs, write_outputs
from kiln.builder.isolation import ChosenOnFirstRun, inplace_reason
from kiln.builder.lazy_stage import LazyStage
from kiln.builder.notices import report_dockerfile
from kiln.builder.onbuild import trigger_instructions
from kiln.builder.options import BuildOptions
from kiln.builder.own_dirs import without_own_dirs
from kiln.builder.platform_args import platform_args, resolve_build_args
from kiln.builder.preupload import Preuploads, from_chain
from kiln.builder.registries import RegistryPool
from kiln.builder.resources import resource_errors
from kiln.builder.stage_graph import build_order, stage_dependencies, target_stage
from kiln.builder.stage_inputs import StageInputs, StageResult
from kiln.builder.stage_scheduler import run_stages
from kiln.builder.stage_steps import StageSteps, locate
from kiln.builder.workspace import Workspace
from kiln.closeable import Closeable
from kiln.context import BuildContext, GitOptions, open_context, within_context
from kiln.dockerfile import (
    Dockerfile,
    Stage,
    check_from_lines,
    expand_word,
    global_args,
    parse,
)
from kiln.errors import (
    ContextError,
    KilnError,
    Remedy,
    UsageError,
)
from kiln.fs import StageFilesystem
from kiln.image import Layer, assemble_image
from kiln.registry import Reference
from kiln.sandbox import Runner

log = logging.getLogger("kiln")

_INSIDE_HINT = "symlinks in the context resolve inside it (as in BuildKit), never on the host"


@dataclass(frozen=True)
class BuildResult:
    """What a finished build produced."""

    digest: str
    manifest: bytes
    config: bytes
    destinations: tuple[Reference, ...]


def build(options: BuildOptions, cancellation: Cancellation | None = None) -> BuildResult:
    """Run a whole build as described by options.

    ``cancellation``: lets another thread (the CLI's signal handler) stop the build; it then
    raises ``kiln.errors.Interrupted`` after the same clean-up as a failure.
    """
    cancellation = cancellation or Cancellation()
    if not options.destinations and not options.no_push:
        raise UsageError(
            "no destination given",
            hint="give {0}, or {1} with {2} and/or {3}",
            remedies=(
                Remedy("destinations", ["REGISTRY/REPO:TAG"]),
                Remedy("no_push", True),
                Remedy("tar_path", "FILE"),
                Remedy("oci_layout_path", "DIR"),
            ),
        )
    inplace = inplace_reason(options.isolation)  # then `/` is the root: kiln works in kiln_dir
    workspace = open_workspace(options, inplace)
    with (
        cancellation.working(),
        cancellation.exits_shielded(workspace),
        # Closed before the workspace goes: unmounted (inplace: `/` put back).
        cancellation.exits_shielded(closing(open_filesystems(options, workspace, inplace))) as fs,
        Builder(options, workspace, fs, cancellation) as builder,
    ):
        return builder.run()


class Builder(Closeable):
    """One build: holds what every stage shares (context, store, registries, runner).

    Closing it waits for the early teardown (raising what failed in it), then closes the
    uploads and the registry connections; the filesystems are the caller's.
    """

    def __init__(
        self,
        options: BuildOptions,
        workspace: Workspace,
        filesystems: Filesystems,
        cancellation: Cancellation | None = None,
    ) -> None:
        self.options = options
        self.cancellation = cancellation or Cancellation()
        self.workspace = workspace
        self.filesystems = filesystems
        self.pool = RegistryPool(options.registry)
        pushed = () if options.no_push else options.destinations
        self.uploads = Preuploads(pushed, self.pool)  # layers go up early
        self.used_build_args: set[str] = set()
        self.build_args = resolve_build_args(options.build_args)
        self.results: dict[int, StageResult] = {}
        self.target_index: int | None = None  # the stage the image is, once known
        self.epoch = source_date_epoch(options)  # None: not --reproducible
        self.created = _timestamp(self.epoch)
        self._runner: Runner | None = None
        self._teardown: Future[None] | None = None  # see _teardown_early
        self._runner_lock = threading.Lock()
        self.inputs = StageInputs(options, workspace, self.pool, filesystems, self.results)
        self.cache = open_build_cache(options, workspace.store, self.pool, self.epoch)

    def run(self) -> BuildResult:
        """Parse, build the needed stages, then write every requested output."""
        check_outputs(self.options, self.pool)
        self.filesystems.prepare()  # meanwhile the context is read and the base pulled
        given = self.options.dockerfile
        with open_context(
            self.options.context,
            dockerfile=Path(given) if given and given != "-" else None,
            sub_path=self.options.context_sub_path,
            git=GitOptions.parse(self.options.git),
        ) as context:
            return self._run(without_own_dirs(context, self.workspace.own_dirs()))

    def _run(self, context: BuildContext) -> BuildResult:
        dockerfile = self._read_dockerfile(context)
        report_dockerfile(dockerfile)
        meta_env = self._meta_args(dockerfile)
        target = target_stage(dockerfile, self.options.target)
        order = build_order(dockerfile, target, meta_env)
        for stage in order:  # what kiln cannot honour is refused before anything runs
            for instruction in stage.instructions:
                refuse_unsupported(instruction, dockerfile.filename)
        self.uploads.watch(from_chain(dockerfile, target, meta_env))
        self.target_index = target.index

        def build_one(stage: Stage) -> StageResult:
            with self.cancellation.working():  # a stage thread, when stages run in parallel
                result = self._build_stage(dockerfile, stage, meta_env, context)
            self.results[stage.index] = result  # before dependants start (see run_stages)
            return result

        run_stages(
            order,
            lambda stage: stage_dependencies(dockerfile, stage, meta_env),
            build_one,
            self.filesystems.jobs(self.options.jobs),
        )
        final = self.results[target.index].state
        config = final.config.with_created(self.created)  # this build's time, not the base's
        if self.options.labels:
            config = config.with_labels(dict(self.options.labels))
        image = assemble_image(config, final.layers, self.options.image_format)
        pushing = not self.options.no_push
        destinations = ", ".join(map(str, self.options.destinations))
        self.cancellation.activity = f"pushing to {destinations}" if pushing else "saving the image"
        self._teardown_early()
        write_outputs(image, self.options, self.pool, self.uploads, self.cancellation)
        self._warn_unused_args()
        return BuildResult(image.digest, image.manifest, image.config, self.options.destinations)

    def _read_dockerfile(self, context: BuildContext) -> Dockerfile:
        """Parse the Dockerfile the context located, or the one on stdin (``-f -``)."""
        if self.options.dockerfile == "-":
            return parse(sys.stdin.buffer.read(), "Dockerfile (stdin)")
        path = context.dockerfile or context.root / "Dockerfile"
        real = within_context(context.root, path)  # a symlink in the context stays inside it
        if not real.is_file():
            hint = _INSIDE_HINT if real != path else None
            raise ContextError(f"Dockerfile {path} does not exist", hint=hint)
        return parse(real.read_bytes(), str(path))

    def _meta_args(self, dockerfile: Dockerfile) -> dict[str, str]:
        predefined = platform_args(self.options.platform)
        env = global_args(dockerfile, predefined, self.build_args, self.used_build_args)
        check_from_lines(dockerfile, env)  # every FROM expands, or a located error now
        return env

    def _build_stage(
        self,
        dockerfile: Dockerfile,
        stage: Stage,
        meta_env: Mapping[str, str],
        context: BuildContext,
    ) -> StageResult:
        label = stage.name or str(stage.index)
        base_name = expand_word(stage.from_.image, meta_env, dockerfile.escape)
        log.info("[stage %s] FROM %s", label, base_name)
        self.cancellation.activity = f"[stage {label}] FROM {base_name}"
        try:
            base = self.inputs.base(dockerfile, stage, meta_env)
        except KilnError as exc:  # a base image that cannot be pulled: point at its FROM
            locate(exc, dockerfile.filename, stage.from_)
            raise
        state = replace(base, name=stage.name, index=stage.index)
        triggers = trigger_instructions(
            state.config.onbuild, stage.from_.image, dockerfile.filename, stage.from_
        )
        state = state.with_config(state.config.without_onbuild()) if triggers else state
        self.uploads.offer(stage.index, state.layers)
        sources = self._sources(dockerfile, stage, context)
        files = LazyStage(
            lambda layers: self._unpack(layers, label),
            lambda stage_fs: self._executor(stage_fs, dockerfile, stage, sources),
            state.layers,
            eager=not self.filesystems.lazy,
        )
        cache = None
        if self.cache is not None:
            cache = self.cache.stage(
                label,
                _name_in_context(dockerfile.filename, context.root),
                state.layers,
                sources,
                lambda ref: self.inputs.source_layers(dockerfile, stage, ref),
                lookups=not {label, str(stage.index)} & set(self.options.no_cache_stages),
            )
        steps = StageSteps(
            label,
            dockerfile.filename,
            files,
            DispatchContext(
                build_args=self.build_args,
                filename=dockerfile.filename,
                created=self.created,
                used_build_args=self.used_build_args,
                meta_args=meta_env,
                escape=dockerfile.escape,
            ),
            self.cancellation,
            self.workspace.root,
            image_stage=stage.index == self.target_index and self.filesystems.defers_files,
            offer=lambda layers: self.uploads.offer(stage.index, layers),
            cache=cache,
        )
        state = steps.run(state, (*triggers, *stage.instructions))
        final = state.layers
        return StageResult(state=state, rootfs=lambda: files.rootfs(final))

    def _unpack(self, layers: Sequence[Layer], label: str) -> StageFilesystem:
        with resource_errors(f"the files of stage {label}", self.workspace.root):
            return self.filesystems.create(layers, label)

    def _sources(
        self, dockerfile: Dockerfile, stage: Stage, context: BuildContext
    ) -> Callable[[str], tuple[BuildContext, bool]]:
        """Where the stage's COPY reads: ``""`` the context, else a stage or an image."""
        return lambda ref: self.inputs.source(dockerfile, stage, context, ref)

    def _executor(
        self,
        stage_fs: StageFilesystem,
        dockerfile: Dockerfile,
        stage: Stage,
        sources: Callable[[str], tuple[BuildContext, bool]],
    ) -> StageExecutor:
        return StageExecutor(
            stage_fs,
            self.workspace.store,
            ChosenOnFirstRun(lambda: self.runner),
            sources,
            dockerfile.filename,
            self.workspace.scratch,
            self.epoch,
            compression=self.options.compression,
            compression_level=self.options.compression_level,
            follow=lambda: self.uploads.follow(stage.index),
        )

    @property
    def runner(self) -> Runner:
        """The RUN backend, chosen on first use (a build without RUN needs no privileges)."""
        with self._runner_lock:  # stages may run in parallel threads
            if self._runner is None:
                self._runner = self.filesystems.runner(self.options.isolation)
        return self._runner

    def _teardown_early(self) -> None:
        """Unmount and delete the stages' directories on another thread while the outputs are
        written, where nothing reads them any more (the layers are in the blob store): on a
        slow disk deleting them takes as long as a push. `close` waits for it."""
        if self.filesystems.closes_before_outputs:

            def teardown() -> None:
                self.filesystems.close()
                self.workspace.remove_rootfs()

            self._teardown = in_background("kiln-teardown", teardown)

    def close(self) -> None:
        with self.cancellation.shielded():  # an interruption never cuts the clean-up short
            try:
                if self._teardown is not None:
                    self._teardown.result()  # it has ended (what failed in it is raised)
            finally:
                try:
                    self._close_cache()
                finally:
                    self.uploads.close()
                    self.pool.close()

    def _close_cache(self) -> None:
        """Wait for the registry cache's pushes, then write ``--cache-report`` if asked."""
        if self.cache is None:
            return
        self.cache.close()
        if self.options.cache_report is not None:
            self.cache.write_report(self.options.cache_report)

    def _warn_unused_args(self) -> None:
        unused = sorted(set(self.options.build_args) - self.used_build_args - PROXY_ARGS)
        if unused:
            log.warning("One or more build-args %s were not consumed", unused)


def _name_in_context(filename: str, root: Path) -> str:
    """The Dockerfile's path within the context (its whole path when outside): the same in
    every checkout or pod, so the cache's step positions are too."""
    path = Path(filename)
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else filename


def source_date_epoch(options: BuildOptions) -> int | None:
    """The time a ``--reproducible`` build pretends to run at (None without it).

    ``source_date_epoch`` if given, else ``$SOURCE_DATE_EPOCH``, else 0 (Kaniko's choice). It is
    the image's ``created``, every history entry's, and the upper bound of every file time in
    the layers written, so the same inputs give the same digest anywhere, at any time.
    """
    if not options.reproducible:
        return None
    if options.source_date_epoch is not None:
        return options.source_date_epoch
    text = os.environ.get("SOURCE_DATE_EPOCH", "").strip() or "0"
    if not text.isdigit():
        raise UsageError(
            f"SOURCE_DATE_EPOCH={text!r} is not a number of seconds since 1970",
            hint="set it to an integer such as $(git log -1 --format=%ct), or unset it for 0",
        )
    return int(text)


def _timestamp(epoch: int | None) -> str:
    """RFC 3339 UTC: the build's start, or ``epoch`` (whole seconds) when reproducible."""
    if epoch is None:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
