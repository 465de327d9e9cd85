"""The state of one stage while its instructions are dispatched.

Why a separate value: dispatch is a pure function from (state, instruction) to (state, effect),
so everything an instruction may read or change lives here, and nothing else does. The image
config is the part that ends up in the image; the rest (declared ARGs, whether CMD was set in this
stage, the layers so far) only steers the build.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from kiln.image import ImageConfig, Layer

DEFAULT_SHELL: tuple[str, ...] = ("/bin/sh", "-c")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class StageState:
    """Everything dispatch may read or change for one stage."""

    config: ImageConfig
    layers: tuple[Layer, ...] = ()
    args: Mapping[str, str] = field(default_factory=dict)
    cmd_set: bool = False
    name: str | None = None
    index: int = 0

    @property
    def shell(self) -> tuple[str, ...]:
        """The SHELL used for shell-form RUN/CMD/ENTRYPOINT, Docker's default unless set."""
        shell = self.config.shell
        return tuple(shell) if shell else DEFAULT_SHELL

    def env_map(self) -> dict[str, str]:
        """The config environment as a mapping (later duplicates win, as in a process env)."""
        out: dict[str, str] = {}
        for item in self.config.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out

    def expansion_env(self) -> dict[str, str]:
        """Variables visible to `$var` in Dockerfile words: ENV overrides ARG, as in Docker."""
        env = dict(self.args)
        env.update(self.env_map())
        return env

    def run_env(self) -> tuple[str, ...]:
        """The environment of a RUN: the config env plus build ARGs that ENV does not shadow."""
        env = self.env_map()
        if "PATH" not in env:
            env["PATH"] = DEFAULT_PATH
        out = [f"{k}={v}" for k, v in env.items()]
        out.extend(f"{k}={v}" for k, v in self.args.items() if k not in env)
        return tuple(out)

    def with_config(self, config: ImageConfig) -> StageState:
        """A copy with a new image config."""
        return replace(self, config=config)
