"""The registry layer cache (`--cache-repo`): shared by pods that share nothing else.

Real builds against the test registry: a build with an empty cache dir and work dir (a fresh
pod) finds every step an earlier build cached; a registry that refuses the cache's pushes
costs a warning, never the build; four builds at once on one cache dir and one cache repo all
give the same verified image.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.registry_e2e.conftest import unique, write_context
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln, skopeo_inspect, umoci_unpack

pytestmark = pytest.mark.registry

DOCKERFILE = """\
FROM {base}
ARG VERSION=1
COPY app.py /app/
RUN echo "$VERSION" > /v && date +%s%N > /stamp
"""


def _report(path: Path) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = json.loads(path.read_text())["steps"]
    return steps


def _build(registry: RegistryServer, context: Path, pod: Path, *flags: str) -> tuple[str, str]:
    """A reproducible build in ``pod`` (its own work and cache dirs): (digest, log)."""
    result = run_kiln(
        "build", "--reproducible", "--insecure-registry", registry.host,
        "--work-dir", str(pod / "work"), "--cache-dir", str(pod / "cache"),
        "--cache-report", str(pod / "report.json"), *flags, str(context),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-1], result.stderr


def test_fresh_pod_hits_the_registry_cache(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "ctx", DOCKERFILE.format(base=base_image), {"app.py": "1"})
    repo = f"{registry.host}/{unique()}"
    first, _ = _build(registry, context, tmp_path / "pod1", "-d", f"{repo}:1", "--cache=true")
    assert [s["hit"] for s in _report(tmp_path / "pod1" / "report.json")] == [False, False]
    listed = subprocess.run(
        ["skopeo", "list-tags", "--tls-verify=false", f"docker://{repo}/cache"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    tags = json.loads(listed.stdout)["Tags"]  # Kaniko's default: <destination repo>/cache
    assert len(tags) == 2 and all(len(tag) == 64 for tag in tags), tags
    second, log = _build(registry, context, tmp_path / "pod2", "-d", f"{repo}:2", "--cache=true")
    assert [s["hit"] for s in _report(tmp_path / "pod2" / "report.json")] == [True, True], log
    assert second == first  # the RUN's timestamp came from the cache, not a new run
    rootfs = umoci_unpack(f"{repo}:2", tmp_path / "unpacked")
    assert (rootfs / "app" / "app.py").read_text() == "1"


def test_ttl_makes_old_entries_misses(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "ctx", DOCKERFILE.format(base=base_image), {"app.py": "1"})
    cache_repo = f"{registry.host}/{unique()}"
    flags = ("--no-push", "--cache-repo", cache_repo)
    _build(registry, context, tmp_path / "pod1", *flags)
    _build(registry, context, tmp_path / "pod2", *flags, "--cache-ttl=1ns")
    reasons = [s["reason"] for s in _report(tmp_path / "pod2" / "report.json")]
    assert reasons[0] == "cache entry expired", reasons


def test_refused_cache_pushes_are_warnings(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "ctx", DOCKERFILE.format(base=base_image), {"app.py": "1"})

    def refuse(method: str, path: str) -> Fault | None:
        denied = b'{"errors":[{"code":"DENIED","message":"cache is read-only"}]}'
        return Fault("reply", status=403, body=denied) if method in ("POST", "PUT") else None

    with FaultProxy(registry.host, rule=refuse) as proxy:
        flags = ("--no-push", "--cache-repo", f"{proxy.host}/{unique()}")
        digest, log = _build(
            registry, context, tmp_path / "pod", *flags, "--insecure-registry", proxy.host
        )
    assert digest.startswith("sha256:")
    assert log.count("was not cached in") == 2, log
    assert "cache is read-only" in log


def test_concurrent_builds_share_cache_dir_and_repo(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "ctx", DOCKERFILE.format(base=base_image), {"app.py": "1"})
    cache_repo = f"{registry.host}/{unique()}"
    destinations = [f"{registry.host}/{unique()}:v1" for _ in range(4)]

    def argv(n: int, dest: str) -> list[str]:
        return [
            sys.executable, "-m", "kiln.cli.main", "build", "--reproducible",
            "--insecure-registry", registry.host, "--cache-dir", str(tmp_path / "cache"),
            "--work-dir", str(tmp_path / f"work{n}"), "--cache-repo", cache_repo,
            "-d", dest, str(context),
        ]  # fmt: skip

    builds = [
        subprocess.Popen(argv(n, dest), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n, dest in enumerate(destinations)
    ]
    outputs = [build.communicate(timeout=300) for build in builds]
    assert [b.returncode for b in builds] == [0] * 4, [err for _, err in outputs]
    for dest, (out, _) in zip(destinations, outputs, strict=True):
        manifest = skopeo_inspect(dest, "--raw")
        assert manifest["layers"], manifest
        rootfs = umoci_unpack(dest, tmp_path / "unpacked" / dest.rsplit("/", 1)[1])
        assert (rootfs / "v").read_text() == "1\n"
        assert out.split()[-1].startswith("sha256:")
    # A fifth build, from the shared cache dir alone, hits every step.
    _, log = _build(registry, context, tmp_path, "--no-push")
    assert log.count(": CACHED") == 2, log
