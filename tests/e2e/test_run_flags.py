"""RUN flags on a real build: `--network=default` is honoured (it is what every RUN gets), the
rest are refused with the line before the base image is even pulled."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_build_push_run import build, write_context
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln, umoci_unpack


def test_run_network_default_runs_like_a_plain_run(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "ctx",
        f"""
        FROM {base_image}
        RUN --network=default echo with-flag > /flag.txt
        """,
    )
    ref = f"{registry.host}/demo/run-network-default:1"
    build(registry, context, ref)
    rootfs = umoci_unpack(ref, tmp_path / "unpacked")
    assert (rootfs / "flag.txt").read_text() == "with-flag\n"


def test_run_network_none_is_refused_before_the_pull(
    registry: RegistryServer, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "ctx",
        f"""
        FROM {registry.host}/no/such-image:1
        RUN --network=none true
        """,
    )
    result = run_kiln(
        "build",
        "--no-push",
        "--insecure-registry",
        registry.host,
        "--tar-path",
        str(tmp_path / "o.tar"),
        str(context),
    )
    assert result.returncode == 1
    dockerfile = context / "Dockerfile"
    assert f"{dockerfile}:2: RUN --network=none is not supported by kiln yet" in result.stderr
    assert "such-image" not in result.stderr  # the refusal came before any pull was tried
