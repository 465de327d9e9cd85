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

from kiln.builder.base_image import fetch_base_image
from kiln.builder.cancel import Cancellation
from kiln.builder.dispatch import DispatchContext, dispatch, refuse_unsupported
from kiln.builder.executor import StageExecutor
from kiln.builder.inplace_filesystems import InplaceFilesystems
from kiln.builder.isolation import ChosenOnFirstRun, inplace_reason, select_runner
from kiln.builder.notices import report_dockerfile
from kiln.builder.onbuild import trigger_instructions
from kiln.builder.options import BuildOptions
from kiln.builder.output import write_layout, write_tarball
from kiln.builder.own_dirs import without_own_dirs
from kiln.builder.platform_args import platform_args, resolve_build_args
from kiln.builder.preupload import Preuploads, from_chain
from kiln.builder.publish import (
    check_compression,
    check_push_permissions,
    publish,
    write_name_files,
)
from kiln.builder.registries import RegistryPool
from kiln.builder.resources import resource_errors
from kiln.builder.stage_filesystems import StageFilesystems
from kiln.builder.stage_graph import build_order, find_stage, stage_dependencies, target_stage
from kiln.builder.stage_scheduler import default_jobs, run_stages
from kiln.builder.state import StageState
from kiln.builder.workspace import Workspace
from kiln.context import BuildContext, GitOptions, LocalContext, open_context, within_context
from kiln.dockerfile import (
    Dockerfile,
    Instruction,
    Stage,
    check_from_lines,
    expand_word,
    global_args,
    parse,
)
from kiln.errors import (
    ContextError,
    DockerfileError,
    KilnError,
    Remedy,
    StepLocation,
    UsageError,
)
from kiln.fs import StageFilesystem
from kiln.image import HistoryEntry, Image, ImageConfig, Layer, Platform, assemble_image
from kiln.registry import Reference
from kiln.sandbox import Runner

log = logging.getLogger("kiln")

_INSIDE_HINT = "symlinks in the context resolve inside it (as in BuildKit), never on the host"

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
    destinations: tuple[Reference, ...]


@dataclass(frozen=True)
class StageResult:
    """A finished stage: its final state and the rootfs later stages may copy from."""

    state: StageState
    rootfs: Path


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
    work_dir = options.work_dir or (options.kiln_dir if inplace else None)
    workspace = Workspace(work_dir, options.cache_dir)
    with cancellation.working(), cancellation.exits_shielded(workspace):
        builder = Builder(options, workspace, inplace, cancellation)
        try:
            return builder.run()
        finally:
            with cancellation.shielded():  # an interruption never cuts the clean-up short
                try:
                    builder.settle()  # the early teardown has ended (what failed in it is raised)
                finally:
                    builder.filesystems.close()  # unmount (inplace: restore) before the workspace
                    builder.uploads.close()
                    builder.pool.close()


class Builder:
    """One build: holds what every stage shares (context, store, registries, runner)."""

    def __init__(
        self,
        options: BuildOptions,
        workspace: Workspace,
        inplace: str | None = None,
        cancellation: Cancellation | None = None,
    ) -> None:
        self.options = options
        self.cancellation = cancellation or Cancellation()
        self.workspace = workspace
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
            1 if self.inplace else (self.options.jobs or default_jobs()),  # one `/` at a time
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
        self._write_outputs(image)
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

    def _base(
        self, dockerfile: Dockerfile, stage: Stage, meta_env: Mapping[str, str]
    ) -> StageState:
        image = expand_word(stage.from_.image, meta_env, dockerfile.escape)
        base_stage = find_stage(dockerfile.stages, image, before=stage.index)
        if base_stage is not None and not image.isdigit():
            previous = self.results[base_stage.index].state
            # The base stage's own ONBUILD lines stay in the config: they fire in this stage.
            return StageState(config=previous.config, layers=previous.layers)
        if image.lower() == "scratch":
            platform = self.options.platform
            return StageState(config=ImageConfig.empty(platform.os, platform.architecture))
        wanted = expand_word(stage.from_.platform or "", meta_env, dockerfile.escape) or None
        store = self.workspace.store
        with resource_errors(f"the blobs of {image}", store.root, self._store_option):
            config, layers = fetch_base_image(
                Reference.parse(image), self.pool, store, _platform(self.options, wanted)
            )
        return StageState(config=config, layers=layers)

    @property
    def _store_option(self) -> str:
        """The option that chose where blobs are kept (for a disk-full hint)."""
        return "cache_dir" if self.options.cache_dir is not None else "work_dir"

    def _unpack(self, layers: tuple[Layer, ...], label: str) -> StageFilesystem:
        with resource_errors(f"the files of stage {label}", self.workspace.root):
            return self.filesystems.create(layers, label)

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
            base = self._base(dockerfile, stage, meta_env)
        except KilnError as exc:  # a base image that cannot be pulled: point at its FROM
            _locate(exc, dockerfile.filename, stage.from_)
            raise
        state = replace(base, name=stage.name, index=stage.index)
        triggers = trigger_instructions(
            state.config.onbuild, stage.from_.image, dockerfile.filename, stage.from_
        )
        state = state.with_config(state.config.without_onbuild()) if triggers else state
        instructions = (*triggers, *stage.instructions)
        self.uploads.offer(stage.index, state.layers)
        stage_fs = self._unpack(state.layers, label)
        executor = StageExecutor(
            stage_fs,
            self.workspace.store,
            ChosenOnFirstRun(lambda: self.runner),
            lambda ref: self._source(dockerfile, stage, context, ref),
            dockerfile.filename,
            self.workspace.scratch,
            self.epoch,
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
            step = f"[stage {label}] STEP {number}/{total}: {instruction.original}"
            self.cancellation.activity = step
            result = dispatch(state, instruction, ctx)
            state = result.state
            last = self._rootfs_unread_after(stage, instructions[number:])
            layer = None
            if result.effect:
                what = f"the files of step {number} ({instruction.keyword}) of stage {label}"
                try:
                    with resource_errors(what, self.workspace.root):
                        layer = executor.apply(state, result.effect, last=last)
                except KilnError as exc:  # say which instruction failed, as BuildKit does
                    _locate(exc, dockerfile.filename, instruction)
                    raise
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
        store, platform = self.workspace.store, self.options.platform
        _, layers = fetch_base_image(Reference.parse(ref), self.pool, store, platform)
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

    def _write_outputs(self, image: Image) -> None:
        options = self.options
        if not options.no_push:
            config_uploads = self._upload_config(image)  # meanwhile the last layers finish
            # Waiting for the early layer uploads is already the push, as far as a user can tell.
            self.cancellation.activity = f"pushing to {', '.join(map(str, options.destinations))}"
            self.uploads.wait()  # then the push finds the layers present
            wait(config_uploads)  # and the config (whatever failed, the push does again)
            pinned = []
            for dest in options.destinations:
                self.cancellation.activity = f"pushing to {dest}"
                pinned.append(publish(image, dest, self.pool))
                self.cancellation.pushed.append(str(dest))
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

    def _upload_config(self, image: Image) -> list[Future[None]]:
        """Start uploading the config blob to every destination, in the background."""
        data = image.config

        def upload(registry: str, repository: str) -> None:
            client = self.pool.client(registry, push=True)
            client.upload_blob(repository, image.config_digest, len(data), lambda: io.BytesIO(data))

        targets = dict.fromkeys((d.registry, d.repository) for d in self.options.destinations)
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


def _locate(error: KilnError, filename: str, instruction: Instruction) -> None:
    """Record on ``error`` the instruction it came from: its first line and its text as written.

    A DockerfileError names FILE:LINE in its message already and is left alone.
    """
    if not isinstance(error, DockerfileError):
        text = instruction.source or instruction.original
        error.at_step(StepLocation(filename, instruction.line, text))


def _record(state: StageState, layer: Layer | None, history: HistoryEntry | None) -> StageState:
    """Add the step's history entry, and its layer if it made one."""
    if history is None:
        return state
    if layer is None:
        entry = replace(history, empty_layer=True)
        return state.with_config(state.config.with_history(entry))
    entry = replace(history, empty_layer=False)
    config = state.config.with_layer(layer.diff_id, entry)
    return replace(state, config=config, layers=(*state.layers, layer))


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


def _platform(options: BuildOptions, override: str | None = None) -> Platform:
    """The build's platform, or the one a ``FROM --platform=`` names (parsed here, where the
    Dockerfile's text is first known)."""
    return Platform.parse(override) if override else options.platform
