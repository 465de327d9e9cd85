"""buildx's `--cache-from`/`--cache-to` and Kaniko's `--compressed-caching` on the command line.

Each accepted spelling must land in kiln's own cache options (the registry cache repository,
the cache dir, and whether the build adds to them); each form kiln cannot honour must stop
the build with exit status 2 and a sentence naming it, never a traceback and never silently.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.builder.options import BuildOptions
from kiln.cli.build_command import options_from_args
from kiln.cli.main import make_parser
from kiln.registry import Reference
from tests.support.tools import run_kiln


def _options(*words: str) -> BuildOptions:
    return options_from_args(make_parser().parse_args(["build", *words, "ctx"]))


REPO = Reference.parse("r.io/team/cache")


@pytest.mark.parametrize(
    ("words", "repo", "push"),
    [
        (["--cache-from=type=registry,ref=r.io/team/cache"], REPO, False),
        (["--cache-from", "r.io/team/cache"], REPO, False),  # buildx's shorthand
        (["--cache-to=type=registry,ref=r.io/team/cache"], REPO, True),
        (["--cache-to=type=registry,ref=r.io/team/cache,mode=max"], REPO, True),
        (["--cache-to=r.io/team/cache"], REPO, True),
        (["--cache-to=type=registry,ref=r.io/team/cache:buildcache"], REPO, True),
        (
            ["--cache-from=type=registry,ref=r.io/team/cache", "--cache-to=r.io/team/cache"],
            REPO,
            True,
        ),
        (["--cache-repo=r.io/team/cache", "--cache-from=r.io/team/cache"], REPO, False),
        (["--cache-from=ref=r.io/team/cache"], REPO, False),  # type defaults to registry
    ],
)
def test_registry_specs_set_the_cache_repository(
    words: list[str], repo: Reference, push: bool
) -> None:
    options = _options(*words)
    assert options.cache and options.cache_repo is not None
    assert (options.cache_repo.registry, options.cache_repo.repository) == (
        repo.registry,
        repo.repository,
    )
    assert options.push_cache is push
    assert options.cache_dir is None and options.write_local_cache


@pytest.mark.parametrize(
    ("words", "writes"),
    [
        (["--cache-from=type=local,src=/var/cache/kiln"], False),
        (["--cache-to=type=local,dest=/var/cache/kiln"], True),
        (["--cache-to=type=local,dest=/var/cache/kiln,mode=max"], True),
        (["--cache-from=type=local,src=/var/cache/kiln", "--cache-dir=/var/cache/kiln"], False),
        (
            [
                "--cache-from=type=local,src=/var/cache/kiln",
                "--cache-to=type=local,dest=/var/cache/kiln",
            ],
            True,
        ),
    ],
)
def test_local_specs_set_the_cache_dir(words: list[str], writes: bool) -> None:
    options = _options(*words)
    assert options.cache_dir == Path("/var/cache/kiln")
    assert options.write_local_cache is writes
    assert options.cache_repo is None and not options.cache


def test_mixed_specs_read_the_registry_and_write_the_directory() -> None:
    options = _options("--cache-from=r.io/team/cache", "--cache-to=type=local,dest=/c")
    assert options.cache_repo is not None and options.push_cache is False
    assert options.cache_dir == Path("/c") and options.write_local_cache


def test_without_specs_the_kaniko_flags_decide() -> None:
    options = _options("--cache-dir=/c", "--cache-repo=r.io/c", "--no-push-cache")
    assert options.cache_dir == Path("/c") and options.write_local_cache
    assert options.push_cache is False


@pytest.mark.parametrize("value", ["true", "false"])
def test_compressed_caching_is_accepted_and_explained(value: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    result = run_kiln("build", "--no-push", f"--compressed-caching={value}", str(tmp_path))
    assert result.returncode == 0, result.stderr
    explained = "--compressed-caching=false: kiln streams cached layers" in result.stderr
    assert explained is (value == "false")


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--cache-to=type=gha", "cache type 'gha' is not supported by kiln"),
        ("--cache-from=type=s3,region=x,bucket=y", "cache type 's3' is not supported by kiln"),
        ("--cache-to=type=inline", "cache type 'inline' is not supported by kiln"),
        ("--cache-from=type=local,dest=/c", "does not support dest for type=local (it takes src)"),
        ("--cache-to=type=local,src=/c", "does not support src for type=local (it takes dest"),
        (
            "--cache-to=type=registry,ref=r.io/c,mode=min",
            "mode=min is not supported: kiln caches every step of every stage",
        ),
        (
            "--cache-to=type=registry,ref=r.io/c,compression=zstd",
            "kiln does not support compression for type=registry (it takes mode, ref)",
        ),
        ("--cache-from=type=registry,ref=r.io/c,mode=max", "kiln does not support mode"),
        ("--cache-from=type=local,src=/c,digest=sha256:00", "kiln does not support digest"),
        ("--cache-from=type=registry", "type=registry needs ref=REGISTRY/REPO"),
        ("--cache-to=type=local", "type=local needs dest=DIR"),
        ("--cache-from=type=registry,ref", "'ref' is not KEY=VALUE"),
        ("--cache-from=type=registry,ref=r.io/a,ref=r.io/b", "ref is given twice"),
        ("--cache-from=r.io/c@sha256:" + "0" * 64, "a cache is a repository, not a digest"),
    ],
)
def test_unmappable_specs_are_usage_errors(flag: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = run_kiln("build", "--no-push", flag, str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--cache-from=r.io/a", "--cache-to=r.io/b"], "one registry cache repository per build"),
        (["--cache-repo=r.io/a", "--cache-to=r.io/b"], "one registry cache repository per build"),
        (
            ["--cache-dir=/a", "--cache-to=type=local,dest=/b"],
            "one local cache directory per build",
        ),
        (
            ["--cache-to=r.io/a", "--no-push-cache"],
            "--cache-to names a registry cache to add to, and pushes to the cache are turned off",
        ),
    ],
)
def test_contradictory_cache_flags_are_usage_errors(
    words: list[str], message: str, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = run_kiln("build", "--no-push", *words, str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_tag_in_ref_is_said_to_be_unused() -> None:
    result = run_kiln(
        "build", "--no-push", "--cache-from=type=registry,ref=r.io/app:buildcache", "/nonexistent"
    )
    assert "the tag :buildcache is not used" in result.stderr
    assert "registry cache is the repository r.io/app" in result.stderr


def test_help_documents_the_buildx_flags() -> None:
    text = " ".join(run_kiln("build", "--help").stdout.split())
    for phrase in ("--cache-from SPEC", "--cache-to SPEC", "--compressed-caching[=true|false]"):
        assert phrase in text
    assert "mode=min is refused" in text
