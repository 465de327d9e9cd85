"""``ImageConfig``: an immutable view of the image config JSON, with Docker's edit semantics.

Why a wrapper rather than a dataclass per field: base images carry fields kiln does not model
(``ArgsEscaped``, vendor keys, future spec additions) and they must survive a rebuild untouched.
So the document is kept as parsed, read through typed accessors, and every ``with_*`` method
returns a new object with one change applied the way ``docker build`` applies it.

Serialisation (``to_json``) is canonical: compact separators, keys sorted at every level, UTF-8
without ``\\u`` escapes. Sorting makes the bytes -- and so the config digest -- depend only on
content, not on the key order of the base image's JSON or on the order of build steps.

Deriving a new image drops the legacy ``container_config``, ``container`` and ``docker_version``
fields (BuildKit does the same): they describe the container that built the *base* image.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kiln.errors import ImageFormatError
from kiln.image.digest import is_valid_digest
from kiln.image.healthcheck import Healthcheck
from kiln.image.history import HistoryEntry
from kiln.image.platform import Platform
from kiln.image.ports import normalize_port_spec

LEGACY_FIELDS = ("container_config", "container", "docker_version")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, eq=False)
class ImageConfig:
    """An image config document. Construct with ``from_json``, ``from_dict`` or ``empty``."""

    _doc: Mapping[str, Any]

    # ----------------------------------------------------------------------------- construction

    @classmethod
    def from_json(cls, data: bytes) -> ImageConfig:
        """Parse a config blob; raises ``ImageFormatError`` when it is not a JSON object."""
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ImageFormatError(f"image config is not valid JSON: {exc}") from exc
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Any) -> ImageConfig:
        """Wrap a parsed config document (deep-copied, so later edits to ``doc`` do not leak)."""
        if not isinstance(doc, Mapping):
            raise ImageFormatError("image config must be a JSON object")
        return cls(copy.deepcopy(dict(doc)))

    @classmethod
    def empty(cls, os: str = "linux", architecture: str = "amd64") -> ImageConfig:
        """The config of an image with no layers and no settings (think: ``FROM scratch``)."""
        return cls(
            {
                "architecture": architecture,
                "config": {},
                "os": os,
                "rootfs": {"type": "layers", "diff_ids": []},
            }
        )

    @classmethod
    def scratch(cls, platform: Platform) -> ImageConfig:
        """What ``FROM scratch`` starts from in BuildKit: default ``PATH`` and ``WorkingDir /``."""
        base = cls.empty(platform.os, platform.architecture).with_platform(platform)
        if platform.os != "linux":
            return base
        return base.with_env_var("PATH", DEFAULT_PATH).with_working_dir("/")

    def to_json(self) -> bytes:
        """Canonical bytes: sorted keys, compact separators, UTF-8 (see the module docstring)."""
        text = json.dumps(self._doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the whole document."""
        return copy.deepcopy(dict(self._doc))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImageConfig):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.to_json())

    # ------------------------------------------------------------------------ top-level reads

    @property
    def architecture(self) -> str:
        """CPU architecture (``amd64``, ``arm64``...); empty string when the config lacks it."""
        return self._str("architecture") or ""

    @property
    def os(self) -> str:
        """Operating system (``linux``); empty string when the config lacks it."""
        return self._str("os") or ""

    @property
    def variant(self) -> str | None:
        """CPU variant (``v8``), if recorded."""
        return self._str("variant")

    @property
    def os_version(self) -> str | None:
        """``os.version`` (Windows images), if recorded."""
        return self._str("os.version")

    @property
    def platform(self) -> Platform:
        """The platform this config declares."""
        features = tuple(str(f) for f in self._doc.get("os.features") or ())
        return Platform(self.os, self.architecture, self.variant, self.os_version, features)

    @property
    def created(self) -> str | None:
        """Creation time (RFC 3339), if recorded."""
        return self._str("created")

    @property
    def author(self) -> str | None:
        """Image author (``MAINTAINER``), if recorded."""
        return self._str("author")

    @property
    def diff_ids(self) -> tuple[str, ...]:
        """Uncompressed layer digests, base layer first."""
        rootfs = _default(self._doc.get("rootfs"), {})
        if not isinstance(rootfs, Mapping):
            raise ImageFormatError("image config rootfs must be an object")
        ids = _default(rootfs.get("diff_ids"), [])
        if not isinstance(ids, list) or not all(isinstance(d, str) for d in ids):
            raise ImageFormatError("image config rootfs.diff_ids must be a list of digests")
        return tuple(ids)

    @property
    def history(self) -> tuple[HistoryEntry, ...]:
        """The build history, oldest first."""
        entries = _default(self._doc.get("history"), [])
        if not isinstance(entries, list):
            raise ImageFormatError("image config history must be a list")
        return tuple(HistoryEntry.from_dict(e) for e in entries)

    def get(self, key: str) -> Any:
        """A deep copy of a raw top-level field (None when absent): the escape hatch."""
        return copy.deepcopy(self._doc.get(key))

    # ------------------------------------------------------------- container config ("config")

    @property
    def env(self) -> tuple[str, ...]:
        """``Env`` as ``KEY=VALUE`` strings, in order."""
        return self._config_strings("Env") or ()

    def env_map(self) -> dict[str, str]:
        """``Env`` as an ordered mapping (the form variable expansion wants)."""
        pairs = (item.partition("=") for item in self.env)
        return {key: value for key, _, value in pairs}

    @property
    def cmd(self) -> tuple[str, ...] | None:
        """``Cmd``, or None when unset."""
        return self._config_strings("Cmd")

    @property
    def entrypoint(self) -> tuple[str, ...] | None:
        """``Entrypoint``, or None when unset."""
        return self._config_strings("Entrypoint")

    @property
    def shell(self) -> tuple[str, ...] | None:
        """``Shell`` (set by ``SHELL``), or None for the default ``/bin/sh -c``."""
        return self._config_strings("Shell")

    @property
    def working_dir(self) -> str:
        """``WorkingDir``; empty string when unset (the runtime then uses ``/``)."""
        return self._config_str("WorkingDir") or ""

    @property
    def user(self) -> str:
        """``User``; empty string when unset (root)."""
        return self._config_str("User") or ""

    @property
    def stop_signal(self) -> str | None:
        """``StopSignal``, or None when unset."""
        return self._config_str("StopSignal")

    @property
    def labels(self) -> dict[str, str]:
        """A copy of ``Labels``."""
        return dict(self._config_map("Labels"))

    @property
    def exposed_ports(self) -> tuple[str, ...]:
        """``ExposedPorts`` keys (``"80/tcp"``)."""
        return tuple(self._config_map("ExposedPorts"))

    @property
    def volumes(self) -> tuple[str, ...]:
        """``Volumes`` keys (container paths)."""
        return tuple(self._config_map("Volumes"))

    @property
    def healthcheck(self) -> Healthcheck | None:
        """``Healthcheck``, or None when unset."""
        raw = self._container().get("Healthcheck")
        return None if raw is None else Healthcheck.from_dict(raw)

    @property
    def onbuild(self) -> tuple[str, ...]:
        """``OnBuild`` triggers (instruction text), in order."""
        return self._config_strings("OnBuild") or ()

    def get_config(self, key: str) -> Any:
        """A deep copy of a raw field of the container config (None when absent)."""
        return copy.deepcopy(self._container().get(key))

    # ------------------------------------------------------------------------------- edits

    def with_env(self, env: Iterable[str]) -> ImageConfig:
        """Replace ``Env`` wholesale with ``KEY=VALUE`` strings."""
        return self._with_config("Env", list(env))

    def with_env_var(self, key: str, value: str) -> ImageConfig:
        """Set one variable as ``ENV`` does: replace the existing entry in place, else append."""
        entry = f"{key}={value}"
        env = list(self.env)
        for i, item in enumerate(env):
            if item.partition("=")[0] == key:
                env[i] = entry
                break
        else:
            env.append(entry)
        return self._with_config("Env", env)

    def with_cmd(self, cmd: Sequence[str] | None) -> ImageConfig:
        """Set ``Cmd``; None removes it (as ENTRYPOINT does to an inherited CMD)."""
        return self._with_config("Cmd", None if cmd is None else list(cmd))

    def with_entrypoint(self, entrypoint: Sequence[str] | None) -> ImageConfig:
        """Set ``Entrypoint``; None removes it. Does not touch ``Cmd``: that is build policy."""
        return self._with_config("Entrypoint", None if entrypoint is None else list(entrypoint))

    def with_shell(self, shell: Sequence[str] | None) -> ImageConfig:
        """Set ``Shell`` (``SHELL``); None restores the default."""
        return self._with_config("Shell", None if shell is None else list(shell))

    def with_working_dir(self, path: str) -> ImageConfig:
        """Set ``WorkingDir`` (the caller resolves relative ``WORKDIR`` paths)."""
        return self._with_config("WorkingDir", path)

    def with_user(self, user: str) -> ImageConfig:
        """Set ``User`` (``name``, ``uid``, ``uid:gid``...)."""
        return self._with_config("User", user)

    def with_stop_signal(self, signal: str | None) -> ImageConfig:
        """Set ``StopSignal``; None removes it."""
        return self._with_config("StopSignal", signal)

    def with_labels(self, labels: Mapping[str, str]) -> ImageConfig:
        """Merge ``labels`` into ``Labels``; new values win, existing order is kept."""
        merged = self.labels
        merged.update(labels)
        return self._with_config("Labels", merged)

    def with_exposed_ports(self, specs: Iterable[str]) -> ImageConfig:
        """Add ports as ``EXPOSE`` does: ``80`` -> ``80/tcp``, ranges expanded, proto lowered."""
        ports = dict(self._config_map("ExposedPorts"))
        for spec in specs:
            for key in normalize_port_spec(spec):
                ports[key] = {}
        return self._with_config("ExposedPorts", ports)

    def with_volumes(self, paths: Iterable[str]) -> ImageConfig:
        """Add container paths to ``Volumes`` (``VOLUME``)."""
        volumes = dict(self._config_map("Volumes"))
        for path in paths:
            volumes[path] = {}
        return self._with_config("Volumes", volumes)

    def with_healthcheck(self, check: Healthcheck | None) -> ImageConfig:
        """Set ``Healthcheck``; use ``Healthcheck.disabled()`` for ``HEALTHCHECK NONE``."""
        return self._with_config("Healthcheck", None if check is None else check.to_dict())

    def with_onbuild(self, trigger: str) -> ImageConfig:
        """Append one ``ONBUILD`` trigger (the instruction text after ``ONBUILD``)."""
        return self._with_config("OnBuild", [*self.onbuild, trigger])

    def without_onbuild(self) -> ImageConfig:
        """Clear ``OnBuild``: triggers run once, in the build that uses this image as a base."""
        return self._with_config("OnBuild", None)

    def with_config_value(self, key: str, value: Any) -> ImageConfig:
        """Set a raw container-config field (None removes it): the escape hatch."""
        return self._with_config(key, copy.deepcopy(value))

    def with_layer(self, diff_id: str, history: HistoryEntry) -> ImageConfig:
        """Append a layer: its diff ID to ``rootfs.diff_ids`` and a non-empty history entry."""
        if not is_valid_digest(diff_id):
            raise ValueError(f"not a valid diff ID: {diff_id!r}")
        doc = self._derived()
        rootfs = dict(doc.get("rootfs") or {})
        rootfs["type"] = "layers"
        rootfs["diff_ids"] = [*self.diff_ids, diff_id]
        doc["rootfs"] = rootfs
        entry = HistoryEntry(
            history.created, history.created_by, False, history.comment, history.author
        )
        doc["history"] = [*self._raw_history(), entry.to_dict()]
        return ImageConfig(doc)

    def with_history(self, entry: HistoryEntry) -> ImageConfig:
        """Append a history entry for a step without a layer (forced to ``empty_layer``)."""
        doc = self._derived()
        empty = HistoryEntry(entry.created, entry.created_by, True, entry.comment, entry.author)
        doc["history"] = [*self._raw_history(), empty.to_dict()]
        return ImageConfig(doc)

    def with_created(self, created: str) -> ImageConfig:
        """Set the image creation time (RFC 3339, e.g. ``2024-01-02T03:04:05Z``)."""
        return self._with_top("created", created)

    def with_author(self, author: str | None) -> ImageConfig:
        """Set ``author`` (``MAINTAINER``); None removes it."""
        return self._with_top("author", author)

    def with_platform(self, platform: Platform) -> ImageConfig:
        """Set ``os``, ``architecture``, ``variant``, ``os.version`` and ``os.features``."""
        doc = self._derived()
        doc["os"] = platform.os
        doc["architecture"] = platform.architecture
        for key, value in (
            ("variant", platform.variant),
            ("os.version", platform.os_version),
            ("os.features", list(platform.os_features) or None),
        ):
            _set_or_remove(doc, key, value)
        return ImageConfig(doc)

    def with_value(self, key: str, value: Any) -> ImageConfig:
        """Set a raw top-level field (None removes it): the escape hatch."""
        return self._with_top(key, copy.deepcopy(value))

    # ------------------------------------------------------------------------------ helpers

    def _derived(self) -> dict[str, Any]:
        doc = copy.deepcopy(dict(self._doc))
        for key in LEGACY_FIELDS:
            doc.pop(key, None)
        return doc

    def _with_top(self, key: str, value: Any) -> ImageConfig:
        doc = self._derived()
        _set_or_remove(doc, key, value)
        return ImageConfig(doc)

    def _with_config(self, key: str, value: Any) -> ImageConfig:
        doc = self._derived()
        container = dict(self._container())
        _set_or_remove(container, key, value)
        doc["config"] = container
        return ImageConfig(doc)

    def _raw_history(self) -> list[Any]:
        _ = self.history  # validate before copying; unknown keys in entries are kept
        return copy.deepcopy(list(_default(self._doc.get("history"), [])))

    def _container(self) -> Mapping[str, Any]:
        container = _default(self._doc.get("config"), {})
        if not isinstance(container, Mapping):
            raise ImageFormatError("image config field 'config' must be an object")
        return container

    def _str(self, key: str) -> str | None:
        value = self._doc.get(key)
        if value is not None and not isinstance(value, str):
            raise ImageFormatError(f"image config field {key!r} must be a string")
        return value

    def _config_str(self, key: str) -> str | None:
        value = self._container().get(key)
        if value is not None and not isinstance(value, str):
            raise ImageFormatError(f"image config field config.{key} must be a string")
        return value

    def _config_strings(self, key: str) -> tuple[str, ...] | None:
        value = self._container().get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ImageFormatError(f"image config field config.{key} must be a list of strings")
        return tuple(value)

    def _config_map(self, key: str) -> Mapping[str, Any]:
        value = _default(self._container().get(key), {})
        if not isinstance(value, Mapping):
            raise ImageFormatError(f"image config field config.{key} must be an object")
        return value


def _set_or_remove(doc: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        doc.pop(key, None)
    else:
        doc[key] = value


def _default(value: Any, fallback: Any) -> Any:
    """``value`` unless it is JSON null/absent: ``[]`` or ``""`` must still fail type checks."""
    return fallback if value is None else value
