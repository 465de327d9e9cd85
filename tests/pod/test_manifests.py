"""deploy/kubernetes: the manifests are valid Kubernetes objects and describe an unprivileged build.

Validation uses the schemas bundled in the `kubernetes-validate` package (offline), in strict
mode so a misspelt field fails; the checks below pin what the README promises about them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
VERSION = kubernetes_validate.latest_version()


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]
    return spec["template"]["spec"] if doc["kind"] == "Job" else spec


def test_the_manifests_exist() -> None:
    assert {p.name for p in MANIFESTS} >= {
        "job.yaml",
        "pod.yaml",
        "cache-pvc.yaml",
        "job-registry-cache.yaml",
        "jobs-shared-cache.yaml",
    }


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_matches_the_kubernetes_schema(path: Path) -> None:
    for doc in _documents(path):
        kubernetes_validate.validate(doc, VERSION, strict=True)


def test_validation_can_fail() -> None:
    job = _documents(DEPLOY / "kubernetes" / "job.yaml")[0]
    broken = copy.deepcopy(job)
    _pod_spec(broken)["containers"][0]["securityContext"]["privilegd"] = False
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


@pytest.mark.parametrize("name", ["job.yaml", "pod.yaml"])
def test_build_pods_are_unprivileged_and_wired_as_documented(name: str) -> None:
    (doc,) = _documents(DEPLOY / "kubernetes" / name)
    spec = _pod_spec(doc)
    (build,) = spec["containers"]
    (warm,) = spec["initContainers"]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    # the registry secret (kubectl create secret docker-registry) as /kiln/.docker/config.json
    secret = volumes["registry-secret"]["secret"]
    assert secret["items"] == [{"key": ".dockerconfigjson", "path": "config.json"}]
    for container in (build, warm):
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["registry-secret"] == "/kiln/.docker"
        assert mounts["base-image-cache"] == "/cache"
        context = container["securityContext"]
        assert context["privileged"] is False
        assert "capabilities" not in context  # the runtime's default set, nothing added
        assert set(container["resources"]) == {"requests", "limits"}
    # RUN needs root in the container (kiln then builds in place, which consumes the container:
    # one build per pod, never restarted in the same container).
    assert build["securityContext"]["runAsUser"] == 0
    assert spec["restartPolicy"] == "Never"
    args = build["args"]
    assert "--digest-file=/dev/termination-log" in args
    assert "--cache-dir=/cache" in args
    assert any(arg.startswith("--context=") and ".git" in arg for arg in args)
    # the init container runs `kiln warm` through the image's own interpreter
    assert warm["command"] == ["/kiln/bin/python3", "-s", "-m", "kiln.cli.main", "warm"]
    assert "--cache-dir=/cache" in warm["args"]
    assert any(arg.startswith("--image=") for arg in warm["args"])


def test_init_command_matches_the_executor_entrypoint() -> None:
    dockerfile = (DEPLOY / "executor" / "Dockerfile").read_text()
    entrypoint = next(
        json.loads(line.split(" ", 1)[1])
        for line in dockerfile.splitlines()
        if line.startswith("ENTRYPOINT")
    )
    assert entrypoint[:4] == ["/kiln/bin/python3", "-s", "-m", "kiln.cli.main"]
    assert entrypoint[4] == "executor"


CACHED_JOBS = ["job-registry-cache.yaml", "jobs-shared-cache.yaml"]


@pytest.mark.parametrize("name", CACHED_JOBS)
def test_cached_build_jobs_share_one_cache_repository(name: str) -> None:
    (doc,) = _documents(DEPLOY / "kubernetes" / name)
    spec = _pod_spec(doc)
    (build,) = spec["containers"]
    context = build["securityContext"]
    assert context["privileged"] is False and context["runAsUser"] == 0
    assert "capabilities" not in context  # the runtime's default set, nothing added
    assert build["image"].endswith("/kiln/executor:latest")
    assert spec["restartPolicy"] == "Never"
    mounts = {m["name"]: m["mountPath"] for m in build["volumeMounts"]}
    assert mounts["registry-secret"] == "/kiln/.docker"  # also the cache repo's credentials
    args = build["args"]
    cache = [a for a in args if a.startswith(("--cache-repo=", "--cache-to="))]
    assert [c.rpartition("=")[2] for c in cache] == ["registry.example.com/acme/app/cache"]
    assert any(a.startswith("--cache-ttl=") for a in args)


def test_concurrent_jobs_build_variants_in_parallel() -> None:
    (doc,) = _documents(DEPLOY / "kubernetes" / "jobs-shared-cache.yaml")
    spec = doc["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["parallelism"] == spec["completions"] > 1
    (build,) = _pod_spec(doc)["containers"]
    env = {e["name"] for e in build["env"]}
    assert "JOB_COMPLETION_INDEX" in env  # declared, so $(JOB_COMPLETION_INDEX) expands in args
    destinations = [a for a in build["args"] if a.startswith("--destination=")]
    assert destinations and all("$(JOB_COMPLETION_INDEX)" in d for d in destinations)


@pytest.mark.parametrize("name", CACHED_JOBS)
def test_cached_job_args_parse_as_kiln_flags(name: str) -> None:
    from kiln.cli.build_command import options_from_args
    from kiln.cli.main import make_parser

    (doc,) = _documents(DEPLOY / "kubernetes" / name)
    (build,) = _pod_spec(doc)["containers"]
    args = [a.replace("$(JOB_COMPLETION_INDEX)", "0") for a in build["args"]]
    options = options_from_args(make_parser().parse_args(["executor", *args]))
    assert options.cache_repo is not None and options.push_cache
    assert options.cache_repo.repository == "acme/app/cache"
