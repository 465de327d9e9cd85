"""The Python API speaks Python: keyword-argument hints, and clear errors for wrong types.

Why: a program calling ``kiln.build_image`` cannot pass ``--insecure-registry``; the same
library error must name ``insecure_registries=[...]`` there, and flags only on the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import kiln
from kiln.errors import RegistryError, UsageError
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln


def _context(root: Path) -> Path:
    root.mkdir()
    (root / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (root / "a").write_text("a")
    return root


@pytest.mark.parametrize("build_args", [["VERSION=1"], "VERSION=1", ("VERSION", "1")])
def test_build_args_must_be_a_mapping(build_args: object, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        kiln.build_image(tmp_path, no_push=True, build_args=build_args)  # type: ignore[arg-type]
    message = str(info.value)
    assert "build_args must be a mapping of names to values" in message
    assert "build_args={'VERSION': '1.2'" in message


def test_build_arg_values_must_be_strings_or_none(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"build_args\['N'\] = 3"):
        kiln.build_image(tmp_path, no_push=True, build_args={"N": 3})  # type: ignore[dict-item]


def test_unknown_keyword_suggests_the_right_one(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        kiln.build_image(tmp_path, no_push=True, insecure_registry=["r:1"])
    assert "unknown build option(s): insecure_registry" in str(info.value)
    assert "insecure_registry -> insecure_registries" in str(info.value)


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("destinations", ["reg.example/App:1"], "'reg.example/App:1'"),
        ("destinations", ["reg.example/app:1", "reg.example/app:bad tag"], "'bad tag'"),
        ("platform", "linux", "'linux'"),
    ],
)
def test_malformed_references_and_platforms_are_refused_at_the_call(
    option: str, value: object, named: str, tmp_path: Path
) -> None:
    """Parsed once, where the caller's text comes in: a usage error naming it, before the
    build starts (the context does not even exist)."""
    given: dict[str, Any] = {option: value}
    with pytest.raises(UsageError) as info:
        kiln.build_image(tmp_path / "missing", no_push=True, **given)
    assert named in str(info.value)


def test_a_destination_is_one_string_or_a_list(tmp_path: Path) -> None:
    """A lone string is one reference, not a sequence of one-letter ones."""
    with pytest.raises(UsageError, match=r"'reg\.example/App:1'"):
        kiln.build_image(tmp_path, no_push=True, destinations="reg.example/App:1")


@pytest.mark.registry
def test_plain_http_hint_is_a_keyword_in_python_and_a_flag_in_the_cli(
    registry: RegistryServer, tmp_path: Path
) -> None:
    context = _context(tmp_path / "ctx")
    dest = f"{registry.host}/hints/app:1"
    with pytest.raises(RegistryError) as info:
        kiln.build_image(context, destinations=[dest], pull_retry=0, push_retry=0)
    assert info.value.remedies  # data, not only text
    python = str(info.value)
    assert f"mark it with insecure_registries=['{registry.host}']" in python
    assert "--" not in python.split("hint:")[1]
    cli = run_kiln("build", "-t", dest, "--push-retry", "0", str(context))
    assert cli.returncode == 1
    assert f"mark it with --insecure-registry {registry.host}" in cli.stderr
