"""Where a stage's files come from: its FROM (an earlier stage, scratch or an image) and the
sources of its COPY --from (an earlier stage or an image by reference).

Why apart from the build loop: resolving a name to a stage or an image, pulling it and giving
it a directory is the same question for FROM and COPY --from, and the loop only needs the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kiln.builder.base_image import fetch_base_image
from kiln.builder.filesystems import Filesystems
from kiln.builder.options import BuildOptions
from kiln.builder.registries import RegistryPool
from kiln.builder.remote_layer import fetch_layers
from kiln.builder.resources import resource_errors
from kiln.builder.stage_graph import find_stage
from kiln.builder.state import StageState
from kiln.builder.workspace import Workspace
from kiln.context import BuildContext, LocalContext
from kiln.dockerfile import Dockerfile, Stage, expand_word
from kiln.image import ImageConfig, Layer, Platform
from kiln.registry import Reference


@dataclass(frozen=True)
class StageResult:
    """A finished stage: its final state and its root, which later stages may copy from
    (made when first asked for: a stage whose steps all hit the cache has none until then)."""

    state: StageState
    rootfs: Callable[[], Path]


@dataclass(frozen=True)
class StageInputs:
    """Resolves FROM and COPY --from for one build; ``results`` fills as stages finish."""

    options: BuildOptions
    workspace: Workspace
    pool: RegistryPool
    filesystems: Filesystems
    results: Mapping[int, StageResult]

    def base(self, dockerfile: Dockerfile, stage: Stage, meta_env: Mapping[str, str]) -> StageState:
        """The state ``stage`` starts from: an earlier stage's, scratch, or a pulled image's."""
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
                Reference.parse(image),
                self.pool,
                store,
                platform_of(self.options, wanted),
                lazy=True,  # the layers are fetched when the stage's files are made
            )
        return StageState(config=config, layers=layers)

    @property
    def _store_option(self) -> str:
        """The option that chose where blobs are kept (for a disk-full hint)."""
        return "cache_dir" if self.options.cache_dir is not None else "work_dir"

    def source(
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
        _, layers = fetch_base_image(Reference.parse(ref), self.pool, store, platform, lazy=True)
        fetch_layers(layers)  # all at once, before they are unpacked one by one
        return LocalContext(root=self.filesystems.detached(layers, "copy-from")), True

    def source_layers(self, dockerfile: Dockerfile, stage: Stage, ref: str) -> tuple[Layer, ...]:
        """The layers COPY --from=``ref`` reads: an earlier stage's, or an image's (its
        manifest and config pulled, the layers left in the registry: a cache key needs their
        diff IDs only)."""
        earlier = find_stage(dockerfile.stages, ref, before=stage.index)
        if earlier is not None:
            return self.results[earlier.index].state.layers
        store, platform = self.workspace.store, self.options.platform
        return fetch_base_image(Reference.parse(ref), self.pool, store, platform, lazy=True)[1]


def platform_of(options: BuildOptions, override: str | None = None) -> Platform:
    """The build's platform, or the one a ``FROM --platform=`` names (parsed here, where the
    Dockerfile's text is first known)."""
    return Platform.parse(override) if override else options.platform
