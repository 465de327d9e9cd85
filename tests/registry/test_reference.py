"""Reference parsing follows Docker's normalisation and grammar."""

from __future__ import annotations

import pytest

from kiln.errors import UsageError
from kiln.registry import Reference

D = "sha256:" + "a" * 64

# text | registry | repository | tag | digest | str()
VALID = [
    ("busybox", "docker.io", "library/busybox", "latest", None,
     "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None,
     "docker.io/library/busybox:1.36"),
    ("library/busybox", "docker.io", "library/busybox", "latest", None,
     "docker.io/library/busybox:latest"),
    ("docker.io/busybox", "docker.io", "library/busybox", "latest", None,
     "docker.io/library/busybox:latest"),
    ("index.docker.io/busybox", "docker.io", "library/busybox", "latest", None,
     "docker.io/library/busybox:latest"),
    ("user/app", "docker.io", "user/app", "latest", None, "docker.io/user/app:latest"),
    ("localhost/app", "localhost", "app", "latest", None, "localhost/app:latest"),
    ("localhost:5000/a/b:v1", "localhost:5000", "a/b", "v1", None, "localhost:5000/a/b:v1"),
    ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", None,
     "127.0.0.1:5000/app:latest"),
    ("quay.io/org/app:1.0-rc_1", "quay.io", "org/app", "1.0-rc_1", None,
     "quay.io/org/app:1.0-rc_1"),
    ("Registry/app", "Registry", "app", "latest", None, "Registry/app:latest"),
    (f"busybox@{D}", "docker.io", "library/busybox", None, D,
     f"docker.io/library/busybox@{D}"),
    (f"reg.io:443/a/b:t@{D}", "reg.io:443", "a/b", "t", D, f"reg.io:443/a/b:t@{D}"),
    ("a.b/c__d/e-f/g.h", "a.b", "c__d/e-f/g.h", "latest", None, "a.b/c__d/e-f/g.h:latest"),
    ("[::1]:5000/app:v", "[::1]:5000", "app", "v", None, "[::1]:5000/app:v"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest", "text_out"), VALID)
def test_parse_normalises(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None, text_out: str
) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )
    assert str(ref) == text_out
    assert Reference.parse(str(ref)) == ref
    assert ref.name == f"{registry}/{repository}"
    assert ref.reference == (digest or tag)


INVALID = [
    ("", "empty"),
    (" busybox", "spaces"),
    ("BusyBox", "lowercase"),
    ("busybox:", "invalid tag"),
    ("busybox:-x", "invalid tag"),
    ("busybox:" + "x" * 129, "invalid tag"),
    ("busybox@sha256:abc", "invalid digest"),
    ("busybox@sha256:" + "A" * 64, "invalid digest"),
    ("busybox@md5", "invalid digest"),
    ("a//b", "component"),
    ("a/b_", "component"),
    ("a/-b", "component"),
    ("reg.io/", "empty"),
    ("-reg.io/app", "invalid registry host"),
    ("reg.io:port/app", "invalid registry host"),
    ("a/" + "b" * 300, "too long"),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_parse_rejects(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Reference.parse(text)


def test_docker_hub_api_host() -> None:
    assert Reference.parse("busybox").api_host == "registry-1.docker.io"
    assert Reference.parse("index.docker.io/x/y").api_host == "registry-1.docker.io"
    assert Reference.parse("quay.io/x/y").api_host == "quay.io"


def test_with_tag_and_digest() -> None:
    ref = Reference.parse("reg.io/app:v1")
    assert str(ref.with_tag("v2")) == "reg.io/app:v2"
    assert str(ref.with_digest(D)) == f"reg.io/app:v1@{D}"
    with pytest.raises(UsageError):
        ref.with_digest("sha256:nothex")
