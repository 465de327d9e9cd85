"""Credentials are found in Docker's config.json the way Docker finds them, and never leak."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from kiln.errors import AuthError
from kiln.registry import Credentials, load_credentials


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_config(directory: Path, content: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(content))
    return directory


# auths content | registry asked for | expected Credentials (None: anonymous)
AUTHS_TABLE = [
    ({"reg.io": {"auth": b64("u:p")}}, "reg.io", Credentials("u", "p")),
    ({"reg.io": {"auth": b64("u:p:with:colons")}}, "reg.io", Credentials("u", "p:with:colons")),
    ({"reg.io": {"username": "u", "password": "p"}}, "reg.io", Credentials("u", "p")),
    ({"https://reg.io/v1/": {"auth": b64("u:p")}}, "reg.io", Credentials("u", "p")),
    ({"http://reg.io:5000": {"auth": b64("u:p")}}, "reg.io:5000", Credentials("u", "p")),
    ({"reg.io:5000": {"auth": b64("u:p")}}, "reg.io", None),
    ({"other.io": {"auth": b64("u:p")}}, "reg.io", None),
    ({"reg.io": {}}, "reg.io", None),
    ({"reg.io": {"identitytoken": "refresh"}}, "reg.io", Credentials(identity_token="refresh")),
    ({"reg.io": {"registrytoken": "bearer"}}, "reg.io", Credentials(registry_token="bearer")),
    ({"https://index.docker.io/v1/": {"auth": b64("hub:pw")}}, "docker.io",
     Credentials("hub", "pw")),
    ({"index.docker.io": {"auth": b64("hub:pw")}}, "docker.io", Credentials("hub", "pw")),
    ({"https://index.docker.io/v1/": {"auth": b64("hub:pw")}}, "index.docker.io",
     Credentials("hub", "pw")),
    ({"https://index.docker.io/v1/": {"auth": b64("hub:pw")}}, "quay.io", None),
]  # fmt: skip


@pytest.mark.parametrize(("auths", "registry", "expected"), AUTHS_TABLE)
def test_auths_entries(
    tmp_path: Path, auths: dict[str, Any], registry: str, expected: Credentials | None
) -> None:
    directory = write_config(tmp_path, {"auths": auths})
    assert load_credentials(registry, directory) == expected


def test_missing_config_is_anonymous(tmp_path: Path) -> None:
    assert load_credentials("reg.io", tmp_path) is None


def test_bad_auth_value_is_an_error_without_secret(tmp_path: Path) -> None:
    directory = write_config(tmp_path, {"auths": {"reg.io": {"auth": b64("nocolon-secret")}}})
    with pytest.raises(AuthError) as caught:
        load_credentials("reg.io", directory)
    assert "nocolon-secret" not in str(caught.value)


def test_invalid_json_is_an_error(tmp_path: Path) -> None:
    tmp_path.joinpath("config.json").write_text("{not json")
    with pytest.raises(AuthError, match="cannot read Docker config"):
        load_credentials("reg.io", tmp_path)


def test_docker_config_env_overrides_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = write_config(tmp_path / "home" / ".docker", {"auths": {"reg.io": {"auth": b64("h:1")}}})
    env = write_config(tmp_path / "env", {"auths": {"reg.io": {"auth": b64("e:2")}}})
    monkeypatch.setenv("HOME", str(home.parent))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    assert load_credentials("reg.io") == Credentials("h", "1")
    monkeypatch.setenv("DOCKER_CONFIG", str(env))
    assert load_credentials("reg.io") == Credentials("e", "2")
    explicit = write_config(tmp_path / "explicit", {"auths": {"reg.io": {"auth": b64("x:3")}}})
    assert load_credentials("reg.io", explicit) == Credentials("x", "3")


def test_repr_hides_secrets() -> None:
    creds = Credentials("user", "hunter2", identity_token="idtok", registry_token="regtok")
    text = repr(creds) + str(creds)
    assert "user" in text
    for secret in ("hunter2", "idtok", "regtok"):
        assert secret not in text


HELPER = """#!/bin/sh
# fake docker-credential helper: records its stdin, answers from a table
read -r server
echo "$server" >> "{log}"
[ "$1" = get ] || exit 3
case "$server" in
  reg.io) echo '{{"ServerURL":"reg.io","Username":"helper-user","Secret":"helper-secret"}}' ;;
  tok.io) echo '{{"ServerURL":"tok.io","Username":"<token>","Secret":"refresh-tok"}}' ;;
  https://index.docker.io/v1/) echo '{{"Username":"hub","Secret":"hubpw"}}' ;;
  broken.io) echo 'secret-in-stdout'; exit 1 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
"""


@pytest.fixture
def helper_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "helper.log"
    script = bindir / "docker-credential-fake"
    script.write_text(HELPER.format(log=log))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_cred_helpers(tmp_path: Path, helper_path: Path) -> None:
    directory = write_config(
        tmp_path / "cfg",
        {
            "auths": {"plain.io": {"auth": b64("file:pw")}},
            "credHelpers": {
                "reg.io": "fake",
                "tok.io": "fake",
                "docker.io": "fake",
                "none.io": "fake",
            },
        },
    )
    assert load_credentials("reg.io", directory) == Credentials("helper-user", "helper-secret")
    assert load_credentials("tok.io", directory) == Credentials(identity_token="refresh-tok")
    assert load_credentials("docker.io", directory) == Credentials("hub", "hubpw")
    assert load_credentials("none.io", directory) is None
    assert load_credentials("plain.io", directory) == Credentials("file", "pw")
    asked = helper_path.read_text().split()
    assert asked == ["reg.io", "tok.io", "https://index.docker.io/v1/", "none.io"]


def test_creds_store_with_auths_fallback(tmp_path: Path, helper_path: Path) -> None:
    directory = write_config(
        tmp_path / "cfg",
        {"credsStore": "fake", "auths": {"other.io": {"auth": b64("file:pw")}}},
    )
    assert load_credentials("reg.io", directory) == Credentials("helper-user", "helper-secret")
    assert load_credentials("other.io", directory) == Credentials("file", "pw")


def test_helper_failure_is_reported_without_output(tmp_path: Path, helper_path: Path) -> None:
    directory = write_config(tmp_path / "cfg", {"credHelpers": {"broken.io": "fake"}})
    with pytest.raises(AuthError, match="docker-credential-fake failed") as caught:
        load_credentials("broken.io", directory)
    assert "secret-in-stdout" not in str(caught.value)


def test_missing_helper(tmp_path: Path) -> None:
    directory = write_config(tmp_path / "cfg", {"credHelpers": {"reg.io": "nonexistent-kiln"}})
    with pytest.raises(AuthError, match="not on PATH"):
        load_credentials("reg.io", directory)
