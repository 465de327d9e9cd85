"""The build loop: Dockerfile + context in, an image (pushed, saved, or both) out.

Why it is short: parsing, dispatch, effects, snapshots and outputs each live in their own module;
this one only wires them in order, so the whole build reads on one screen.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, wait
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from kiln.build.base_image import fetch_base_image
from kiln.build.dispatch import DispatchContext, dispatch, refuse_unsupported
from kiln.build.executor import StageExecutor
from kiln.build.inplace_filesystems import InplaceFilesystems
from kiln.build.isolation import inplace_reason, select_runner
from kiln.build.notices import report_dockerfile
from kiln.build.onbuild import trigger_instructions
from kiln.build.options import BuildOptions
from kiln.build.output import AssembledImage, assemble, push, write_layout, write_tarball
from kiln.build.platform_args import platform_args, resolve_build_args
from kiln.build.preupload import Preuploads, from_chain
from kiln.build.publish import check_compression, check_push_permissions, write_name_files
from kiln.build.registries import RegistryPool
from kiln.build.stage_filesystems import StageFilesystems
from kiln.build.stage_graph import build_order, find_stage, stage_dependencies, target_stage
from kiln.build.stage_scheduler import default_jobs, run_stages
from kiln.build.state import LayerRef, StageState
from kiln.build.workspace import Workspace
from kiln.context import BuildContext, GitOptions, LocalContext, open_context
from kiln.dockerfile import (
    Dockerfile,
    Instruction,
    Stage,
    check_from_lines,
    expand_word,
    global_args,
    parse,
)
from kiln.errors import ContextError, UsageError
from kiln.fs import StageFilesystem
from kiln.image import HistoryEntry, ImageConfig
from kiln.registry import Reference
from kiln.sandbox import Runner

log = logging.getLogger("kiln")

#: Instructions whose effects read or write the rootfs (everything else only changes config).
_FILESYSTEM_STEPS = frozenset({"RUN", "COPY", "ADD", "WORKDIR"})

# Docker's predefined build args: accepted without an ARG line and never reported as unused.
PREDEFINED_ARGS = frozenset(
    name
    for base in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
    for name in (base, base.lower())
)


@dataclass(frozen=True)
class BuildResult:
    """What a finished build produced."""

    digest: str
    manifest: bytes
    config: bytes
    destinations: tuple[str, ...]


@dataclass(frozen=True)
class StageResult:
    """A finished stage: its final state and the rootfs later stages may copy from."""

    state: StageState
    rootfs: Path


def build(options: BuildOptions) -> BuildResult:
    """Run a whole build as described by options."""
    if not options.destinations and not options.no_push:
        raise UsageError(
            "no destination given",
            hint="pass --destination/-t REF, or --no-push with --tar-path/--oci-layout-path",
        )
    inplace = inplace_reason(options.isolation)  # then `/` is the root: kiln works in kiln_dir
    work_dir = options.work_dir or (options.kiln_dir if inplace else None)
    with Workspace(work_dir, options.cache_dir) as workspace:
        builder = Builder(options, workspace, inplace)
        try:
            return builder.run()
        finally:
            try:
                builder.settle()  # the early teardown has ended (what failed in it is raised)
            finally:
                builder.filesystems.close()  # unmount (inplace: restore) before the workspace
                builder.uploads.close()
                builder.pool.close()


class Builder:
    """One build: holds what every stage shares (context, store, registries, runner)."""

    def __init__(
        self, options: BuildOptions, workspace: Workspace, inplace: str | None = None
    ) -> None:
        self.options = options
        self.workspace = workspace
        self.pool = RegistryPool(options.registry)
        pushed = () if options.no_push else options.destinations
        self.uploads = Preuploads(pushed, self.pool, workspace.store)  # layers go up early
        self.used_build_args: set[str] = set()
        self.build_args = resolve_build_args(options.build_args)
        self.results: dict[int, StageResult] = {}
        self.target_index: int | None = None  # the stage the image is, once known
        self.created = _timestamp(options)
        self._runner: Runner | None = None
        self._teardown: Future[None] | None = None  # see _teardown_early
        self._runner_lock = threading.Lock()
        self.inplace = inplace  # why the build runs in `/` itself, or None
        self.filesystems: StageFilesystems | InplaceFilesystems = (
            InplaceFilesystems(options, workspace)
            if inplace
            else StageFilesystems(options.snapshotter, workspace)
        )

    def run(self) -> BuildResult:
        """Parse, build the needed stages, then write every requested output."""
        self._check_outputs()
        if isinstance(self.filesystems, StageFilesystems):
            # The overlay probe (a mount) runs while the context is read and the base pulled.
            _in_background("kiln-snapshotter", self.filesystems.choose)
        given = self.options.dockerfile
        with open_context(
            self.options.context,
            dockerfile=Path(given) if given and given != "-" else None,
            sub_path=self.options.context_sub_path,
            git=GitOptions.parse(self.options.git),
        ) as context:
            return self._run(context)

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
            result = self._build_stage(dockerfile, stage, meta_env, context)
            self.results[stage.index] = result  # before dependants start (see run_stages)
            return result

        run_stages(
            order,
            lambda stage: stage_dependencies(dockerfile, stage, meta_env),
            build_one,
            1 if self.inplace else (self.options.jobs or default_jobs()),  # one `/` at a time
        )
        final = self.results[target.index].state
        config = final.config
        if self.options.labels:
            config = config.with_labels(dict(self.options.labels))
        image = assemble(config, final.layers, self.options.image_format)
        self._teardown_early()
        self._write_outputs(image)
        self._warn_unused_args()
        return BuildResult(image.digest, image.manifest, image.config, self.options.destinations)

    def _read_dockerfile(self, context: BuildContext) -> Dockerfile:
        """Parse the Dockerfile the context located, or the one on stdin (``-f -``)."""
        if self.options.dockerfile == "-":
            return parse(sys.stdin.buffer.read(), "Dockerfile (stdin)")
        path = context.dockerfile or context.root / "Dockerfile"
        if not path.is_file():
            raise ContextError(f"Dockerfile {path} does not exist")
        return parse(path.read_bytes(), str(path))

    def _meta_args(self, dockerfile: Dockerfile) -> dict[str, str]:
        predefined = platform_args(_platform(self.options))
        env = global_args(dockerfile, predefined, self.build_args, self.used_build_args)
        check_from_lines(dockerfile, env)  # every FROM expands, or a located error now
        return env

    def _base(
        self, dockerfile: Dockerfile, stage: Stage, meta_env: Mapping[str, str]
    ) -> StageState:
        image = expand_word(stage.from_.image, meta_env, dockerfile.escape)
        base_stage = find_stage(dockerfile.stages, image, before=stage.index)
        if base_stage is not None and not image.isdigit():
            previous = self.results[base_stage.index].state
            # BuildKit runs ONBUILD triggers of images only; a stage's are dropped.
            return StageState(config=previous.config.without_onbuild(), layers=previous.layers)
        if image.lower() == "scratch":
            return StageState(config=ImageConfig.empty(*_platform(self.options)[:2]))
        wanted = expand_word(stage.from_.platform or "", meta_env, dockerfile.escape) or None
        config, layers = fetch_base_image(
            image, self.pool, self.workspace.store, _platform(self.options, wanted)
        )
        return StageState(config=config, layers=layers)

    def _unpack(self, layers: tuple[LayerRef, ...], label: str) -> StageFilesystem:
        return self.filesystems.create(layers, label)

    def _build_stage(
        self,
        dockerfile: Dockerfile,
        stage: Stage,
        meta_env: Mapping[str, str],
        context: BuildContext,
    ) -> StageResult:
        label = stage.name or str(stage.index)
        image = expand_word(stage.from_.image, meta_env, dockerfile.escape)
        log.info("[stage %s] FROM %s", label, image)
        state = replace(self._base(dockerfile, stage, meta_env), name=stage.name, index=stage.index)
        triggers = trigger_instructions(state.config.onbuild, stage.from_.image)
        state = state.with_config(state.config.without_onbuild()) if triggers else state
        instructions = (*triggers, *stage.instructions)
        self.uploads.offer(stage.index, state.layers)
        stage_fs = self._unpack(state.layers, label)
        executor = StageExecutor(
            stage_fs,
            self.workspace.store,
            self.runner,
            lambda ref: self._source(dockerfile, stage, context, ref),
            dockerfile.filename,
            self.workspace.scratch,
            self.options.source_date_epoch if self.options.reproducible else None,
            compression=self.options.compression,
            compression_level=self.options.compression_level,
            follow=lambda: self.uploads.follow(stage.index),
        )
        ctx = DispatchContext(
            build_args=self.build_args,
            filename=dockerfile.filename,
            created=self.created,
            used_build_args=self.used_build_args,
            meta_args=meta_env,
            escape=dockerfile.escape,
        )
        total = len(instructions)
        for number, instruction in enumerate(instructions, start=1):
            log.info("[stage %s] STEP %d/%d: %s", label, number, total, instruction.original)
            result = dispatch(state, instruction, ctx)
            state = result.state
            last = self._rootfs_unread_after(stage, instructions[number:])
            layer = executor.apply(state, result.effect, last=last) if result.effect else None
            state = _record(state, layer, result.history)
            self.uploads.offer(stage.index, state.layers)
        return StageResult(state=state, rootfs=stage_fs.rootfs)

    def _rootfs_unread_after(self, stage: Stage, rest: tuple[Instruction, ...]) -> bool:
        """Nothing reads this stage's rootfs after the current step: it is the image's stage
        (no other stage copies from it) and no later step of it has a filesystem effect."""
        return (
            stage.index == self.target_index
            and not self.inplace
            and not any(ins.keyword in _FILESYSTEM_STEPS for ins in rest)
        )

    def _source(
        self, dockerfile: Dockerfile, stage: Stage, context: BuildContext, ref: str
    ) -> tuple[BuildContext, bool]:
        """Where COPY reads from: the context, an earlier stage, or an image by reference."""
        if not ref:
            return context, False
        earlier = find_stage(dockerfile.stages, ref, before=stage.index)
        if earlier is not None:
            done = self.results[earlier.index]
            label = earlier.name or str(earlier.index)
            root = self.filesystems.stage_source(done.rootfs, done.state.layers, label)
            return LocalContext(root=root), True
        _, layers = fetch_base_image(ref, self.pool, self.workspace.store, _platform(self.options))
        return LocalContext(root=self.filesystems.detached(layers, "copy-from")), True

    @property
    def runner(self) -> Runner:
        """The RUN backend, chosen on first use (a build without RUN needs no privileges)."""
        with self._runner_lock:  # stages may run in parallel threads
            if self._runner is None:
                self._runner = select_runner(self.options.isolation, self.inplace)
        return self._runner

    def _check_outputs(self) -> None:
        """Fail before building when the outputs cannot work (format, push permission)."""
        options = self.options
        check_compression(options.image_format, options.compression, options.compression_level)
        if not options.no_push and not options.registry.skip_push_permission_check:
            check_push_permissions(options.destinations, self.pool)

    def _write_outputs(self, image: AssembledImage) -> None:
        options = self.options
        store = self.workspace.store
        if not options.no_push:
            config_uploads = self._upload_config(image)  # meanwhile the last layers finish
            self.uploads.wait()  # then the push finds the layers present
            wait(config_uploads)  # and the config (whatever failed, the push does again)
            pinned = [push(image, dest, self.pool, store) for dest in options.destinations]
            write_name_files(
                pinned,
                options.image_name_with_digest_file,
                options.image_name_tag_with_digest_file,
            )
        if options.tar_path is not None:
            write_tarball(image, options.tar_path, options.destinations, store)
        if options.oci_layout_path is not None:
            tag = Reference.parse(options.destinations[0]).tag if options.destinations else None
            write_layout(image, options.oci_layout_path, tag or "latest", store)
        if options.digest_file is not None:
            options.digest_file.write_text(image.digest)
        log.info("Built image %s", image.digest)

    def _teardown_early(self) -> None:
        """Unmount and delete the stages' directories on another thread while the outputs are
        written: nothing reads them any more (the layers are in the blob store), and on a slow
        disk deleting them takes as long as a push. `settle` waits for it."""
        if not self.inplace:  # inplace: closing restores `/`, which stays after the outputs

            def teardown() -> None:
                self.filesystems.close()
                self.workspace.remove_rootfs()

            self._teardown = _in_background("kiln-teardown", teardown)

    def settle(self) -> None:
        """Wait for the early teardown (if any); raise what failed in it."""
        if self._teardown is not None:
            self._teardown.result()

    def _upload_config(self, image: AssembledImage) -> list[Future[None]]:
        """Start uploading the config blob to every destination, in the background."""
        data = image.config

        def upload(registry: str, repository: str) -> None:
            client = self.pool.client(registry, push=True)
            client.upload_blob(repository, image.config_digest, len(data), lambda: io.BytesIO(data))

        refs = [Reference.parse(destination) for destination in self.options.destinations]
        targets = dict.fromkeys((ref.registry, ref.repository) for ref in refs)
        return [_in_background("kiln-config-upload", upload, *target) for target in targets]

    def _warn_unused_args(self) -> None:
        unused = sorted(set(self.options.build_args) - self.used_build_args - PREDEFINED_ARGS)
        if unused:
            log.warning("One or more build-args %s were not consumed", unused)


def _in_background(name: str, function: Callable[..., None], *args: object) -> Future[None]:
    """Run ``function(*args)`` on a daemon thread; its outcome is the future's."""
    future: Future[None] = Future()

    def work() -> None:
        try:
            function(*args)
        except BaseException as exc:  # handed to whoever waits for the future
            future.set_exception(exc)
        else:
            future.set_result(None)

    threading.Thread(target=work, name=name, daemon=True).start()
    return future


def _record(state: StageState, layer: LayerRef | None, history: HistoryEntry | None) -> StageState:
    """Add the step's history entry, and its layer if it made one."""
    if history is None:
        return state
    if layer is None:
        entry = replace(history, empty_layer=True)
        return state.with_config(state.config.with_history(entry))
    entry = replace(history, empty_layer=False)
    config = state.config.with_layer(layer.diff_id, entry)
    return replace(state, config=config, layers=(*state.layers, layer))


def _timestamp(options: BuildOptions) -> str:
    if options.reproducible:
        epoch = options.source_date_epoch or int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
        moment = datetime.fromtimestamp(epoch, UTC)
    else:
        moment = datetime.now(UTC)
    return (
        moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if not options.reproducible
        else (moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
    )


def _platform(options: BuildOptions, override: str | None = None) -> tuple[str, str, str | None]:
    spec = override or options.platform
    parts = spec.split("/")
    if len(parts) < 2:
        raise UsageError(f"invalid platform {spec!r}: expected os/arch[/variant]")
    return parts[0], parts[1], parts[2] if len(parts) > 2 else None
