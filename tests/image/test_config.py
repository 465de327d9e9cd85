"""ImageConfig: accessors, Docker edit semantics, immutability, canonical JSON."""

from __future__ import annotations

import json

import pytest

from kiln.errors import BuildError, ImageFormatError
from kiln.image import DEFAULT_PATH, Healthcheck, HistoryEntry, ImageConfig, Platform

DIFF_A = "sha256:" + "a" * 64
DIFF_B = "sha256:" + "b" * 64

# Shaped like a real `docker inspect`-era config, with fields kiln does not model.
BASE = {
    "architecture": "amd64",
    "os": "linux",
    "created": "2023-05-01T00:00:00.123456789Z",
    "docker_version": "20.10.23",
    "container": "3f1a",
    "container_config": {"Cmd": ["/bin/sh", "-c", '#(nop) CMD ["sh"]']},
    "config": {
        "Env": ["PATH=/usr/bin:/bin", "LANG=C", "TZ=UTC"],
        "Cmd": ["sh"],
        "Labels": {"maintainer": "base", "version": "1"},
        "ArgsEscaped": True,
        "Image": "sha256:" + "c" * 64,
    },
    "rootfs": {"type": "layers", "diff_ids": [DIFF_A]},
    "history": [{"created": "2023-05-01T00:00:00Z", "created_by": "ADD rootfs.tar /"}],
    "x-vendor": {"kept": [1, 2]},
}


def base() -> ImageConfig:
    return ImageConfig.from_json(json.dumps(BASE).encode())


def test_accessors_read_the_document() -> None:
    config = base()
    assert config.architecture == "amd64"
    assert config.os == "linux"
    assert config.platform == Platform("linux", "amd64")
    assert config.env == ("PATH=/usr/bin:/bin", "LANG=C", "TZ=UTC")
    assert config.env_map() == {"PATH": "/usr/bin:/bin", "LANG": "C", "TZ": "UTC"}
    assert config.cmd == ("sh",)
    assert config.entrypoint is None
    assert config.working_dir == ""
    assert config.user == ""
    assert config.labels == {"maintainer": "base", "version": "1"}
    assert config.diff_ids == (DIFF_A,)
    assert config.history == (HistoryEntry("2023-05-01T00:00:00Z", "ADD rootfs.tar /"),)


def test_with_methods_do_not_change_the_original() -> None:
    config = base()
    before = config.to_json()
    changed = (
        config.with_env_var("LANG", "C.UTF-8")
        .with_cmd(["bash"])
        .with_labels({"a": "b"})
        .with_layer(DIFF_B, HistoryEntry(None, "RUN x"))
    )
    assert config.to_json() == before
    assert changed != config
    assert config.cmd == ("sh",)


def test_accessors_return_copies() -> None:
    config = base()
    config.labels["evil"] = "1"
    config.to_dict()["config"]["Env"].append("X=1")
    assert "evil" not in config.labels
    assert "X=1" not in config.env


def test_from_dict_copies_its_input() -> None:
    doc = json.loads(json.dumps(BASE))
    config = ImageConfig.from_dict(doc)
    doc["config"]["Env"].append("LEAK=1")
    assert "LEAK=1" not in config.env


def test_env_var_replaces_in_place_or_appends() -> None:
    config = base().with_env_var("LANG", "C.UTF-8").with_env_var("NEW", "a=b")
    assert config.env == ("PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TZ=UTC", "NEW=a=b")
    assert config.env_map()["NEW"] == "a=b"
    # A prefix of another name must not match it.
    config = ImageConfig.empty().with_env_var("PATHX", "1").with_env_var("PATH", "2")
    assert config.env == ("PATHX=1", "PATH=2")


def test_labels_merge_and_later_values_win() -> None:
    config = base().with_labels({"version": "2", "new": "x"})
    assert config.labels == {"maintainer": "base", "version": "2", "new": "x"}


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        (["80"], ["80/tcp"]),
        (["53/UDP"], ["53/udp"]),
        (["8000-8002"], ["8000/tcp", "8001/tcp", "8002/tcp"]),
        (["127.0.0.1:8080:80/tcp"], ["80/tcp"]),
        (["80", "80/tcp", "443/sctp"], ["80/tcp", "443/sctp"]),
    ],
)
def test_exposed_ports_are_normalised(specs: list[str], expected: list[str]) -> None:
    config = ImageConfig.empty().with_exposed_ports(specs)
    assert sorted(config.exposed_ports) == sorted(expected)
    assert json.loads(config.to_json())["config"]["ExposedPorts"] == {p: {} for p in expected}


@pytest.mark.parametrize("spec", ["http", "80/icmp", "70000", "90-80", "-1", ""])
def test_invalid_ports_raise_build_error(spec: str) -> None:
    with pytest.raises(BuildError):
        ImageConfig.empty().with_exposed_ports([spec])


def test_exposed_ports_accumulate() -> None:
    config = ImageConfig.empty().with_exposed_ports(["80"]).with_exposed_ports(["443"])
    assert set(config.exposed_ports) == {"80/tcp", "443/tcp"}


def test_simple_setters() -> None:
    config = (
        ImageConfig.empty()
        .with_entrypoint(["/entry", "--flag"])
        .with_cmd(["arg"])
        .with_working_dir("/app")
        .with_user("1000:1000")
        .with_stop_signal("SIGTERM")
        .with_shell(["/bin/bash", "-c"])
        .with_volumes(["/data", "/cache"])
        .with_onbuild("RUN echo hi")
        .with_onbuild("COPY . /src")
        .with_author("someone")
    )
    assert config.entrypoint == ("/entry", "--flag")
    assert config.cmd == ("arg",)
    assert config.working_dir == "/app"
    assert config.user == "1000:1000"
    assert config.stop_signal == "SIGTERM"
    assert config.shell == ("/bin/bash", "-c")
    assert config.volumes == ("/data", "/cache")
    assert config.onbuild == ("RUN echo hi", "COPY . /src")
    assert config.author == "someone"
    assert config.without_onbuild().onbuild == ()
    cleared = config.with_cmd(None).with_stop_signal(None)
    assert cleared.cmd is None
    assert "Cmd" not in json.loads(cleared.to_json())["config"]


def test_healthcheck_serialises_like_docker() -> None:
    check = Healthcheck(("CMD-SHELL", "curl -f localhost"), interval_ns=30_000_000_000, retries=3)
    config = ImageConfig.empty().with_healthcheck(check)
    assert json.loads(config.to_json())["config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "curl -f localhost"],
        "Interval": 30_000_000_000,
        "Retries": 3,
    }
    assert config.healthcheck == check
    disabled = config.with_healthcheck(Healthcheck.disabled())
    assert json.loads(disabled.to_json())["config"]["Healthcheck"] == {"Test": ["NONE"]}


def test_layers_and_history_line_up() -> None:
    config = (
        base()
        .with_history(HistoryEntry("2024-01-01T00:00:00Z", "ENV A=1", empty_layer=False))
        .with_layer(DIFF_B, HistoryEntry("2024-01-01T00:00:01Z", "RUN make", empty_layer=True))
    )
    assert config.diff_ids == (DIFF_A, DIFF_B)
    history = json.loads(config.to_json())["history"]
    assert history[1] == {
        "created": "2024-01-01T00:00:00Z",
        "created_by": "ENV A=1",
        "empty_layer": True,
    }
    # A layer entry never says empty_layer, not even false.
    assert history[2] == {"created": "2024-01-01T00:00:01Z", "created_by": "RUN make"}
    non_empty = [h for h in config.history if not h.empty_layer]
    assert len(non_empty) == len(config.diff_ids)


def test_history_entry_serialisation_omits_false_and_none() -> None:
    assert HistoryEntry(None, None).to_dict() == {}
    entry = HistoryEntry("t", "RUN x", empty_layer=True, comment="c", author="a")
    assert entry.to_dict() == {
        "created": "t",
        "author": "a",
        "created_by": "RUN x",
        "comment": "c",
        "empty_layer": True,
    }
    assert HistoryEntry.from_dict(entry.to_dict()) == entry


def test_with_layer_rejects_bad_diff_id() -> None:
    with pytest.raises(ValueError):
        ImageConfig.empty().with_layer("sha256:nope", HistoryEntry(None, "x"))


def test_unknown_fields_survive_and_legacy_fields_are_dropped() -> None:
    doc = json.loads(base().with_user("nobody").to_json())
    assert doc["x-vendor"] == {"kept": [1, 2]}
    assert doc["config"]["ArgsEscaped"] is True
    assert doc["created"] == BASE["created"]
    for legacy in ("container_config", "container", "docker_version"):
        assert legacy not in doc
    # Reading alone does not rewrite anything.
    assert "container_config" in json.loads(base().to_json())


def test_to_json_is_canonical() -> None:
    reordered = dict(reversed(list(BASE.items())))
    a = ImageConfig.from_dict(BASE).to_json()
    b = ImageConfig.from_dict(reordered).to_json()
    assert a == b
    compact_sorted = json.dumps(json.loads(a), sort_keys=True, separators=(",", ":")).encode()
    assert a == compact_sorted
    assert list(json.loads(a)) != list(BASE)  # BASE is not sorted, so sorting happened
    unicode = ImageConfig.empty().with_labels({"name": "café"}).to_json()
    assert "café".encode() in unicode


def test_empty_and_scratch() -> None:
    empty = ImageConfig.empty("linux", "arm64")
    assert json.loads(empty.to_json()) == {
        "architecture": "arm64",
        "config": {},
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    assert empty.diff_ids == ()
    assert empty.history == ()
    scratch = ImageConfig.scratch(Platform("linux", "arm", "v7"))
    assert scratch.variant == "v7"
    assert scratch.env == (f"PATH={DEFAULT_PATH}",)
    assert scratch.working_dir == "/"


def test_with_platform_and_created() -> None:
    config = (
        base().with_platform(Platform("linux", "arm64", "v8")).with_created("2024-02-03T04:05:06Z")
    )
    assert config.platform == Platform("linux", "arm64", "v8")
    assert config.created == "2024-02-03T04:05:06Z"
    assert config.with_platform(Platform("linux", "amd64")).variant is None


def test_raw_escape_hatches() -> None:
    config = base().with_config_value("ArgsEscaped", None).with_value("x-new", {"a": 1})
    assert config.get_config("ArgsEscaped") is None
    assert config.get("x-new") == {"a": 1}


@pytest.mark.parametrize(
    "document",
    [b"not json", b"[1, 2]", b'{"config": {"Env": "PATH=/bin"}}', b'{"config": []}'],
)
def test_malformed_configs_raise_image_format_error(document: bytes) -> None:
    with pytest.raises(ImageFormatError):
        ImageConfig.from_json(document).env  # noqa: B018


def test_equality_and_hash_follow_content() -> None:
    assert base() == base()
    assert hash(base()) == hash(base())
    assert base() != base().with_user("x")
