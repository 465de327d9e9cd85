"""ONBUILD lines of a stage fire in a later stage built FROM it, as BuildKit's frontend does."""

from __future__ import annotations

from pathlib import Path

from kiln.builder.stage_graph import build_order
from kiln.dockerfile import parse
from tests.e2e.test_build_push_run import build, write_context
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln, skopeo_inspect, umoci_unpack

PARENT_AND_CHILD = """
    FROM {base} AS helper
    RUN echo helped > /helped.txt

    FROM {base} AS parent
    ONBUILD COPY trigger.txt /from-trigger.txt
    ONBUILD ENV FROM_TRIGGER=yes
    ONBUILD COPY --from=helper /helped.txt /helped.txt
    ONBUILD RUN echo fired >> /fired.txt

    FROM parent AS child
    RUN cat /fired.txt /from-trigger.txt /helped.txt > /seen.txt

    FROM child AS grandchild
    RUN echo grandchild >> /fired.txt
"""


def test_stage_triggers_fire_once_in_the_child(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "ctx",
        PARENT_AND_CHILD.format(base=base_image),
        {"trigger.txt": "copied by a trigger\n"},
    )
    ref = f"{registry.host}/onbuild/child:1"
    build(registry, context, ref, "--target", "child")
    config = skopeo_inspect(ref, "--config", "--raw")["config"]
    assert "FROM_TRIGGER=yes" in config["Env"]
    assert not config.get("OnBuild"), "triggers fire once and are not inherited further"
    rootfs = umoci_unpack(ref, tmp_path / "child")
    assert (rootfs / "seen.txt").read_text() == "fired\ncopied by a trigger\nhelped\n"

    grand = f"{registry.host}/onbuild/grandchild:1"
    build(registry, context, grand)
    rootfs = umoci_unpack(grand, tmp_path / "grandchild")
    assert (rootfs / "fired.txt").read_text() == "fired\ngrandchild\n", "fired a second time"

    parent = f"{registry.host}/onbuild/parent:1"
    build(registry, context, parent, "--target", "parent")
    stored = skopeo_inspect(parent, "--config", "--raw")["config"]["OnBuild"]
    assert stored == [
        "COPY trigger.txt /from-trigger.txt",
        "ENV FROM_TRIGGER=yes",
        "COPY --from=helper /helped.txt /helped.txt",
        "RUN echo fired >> /fired.txt",
    ]
    assert not (umoci_unpack(parent, tmp_path / "parent") / "fired.txt").exists()


def test_a_trigger_copying_from_a_stage_makes_it_a_dependency() -> None:
    dockerfile = parse(PARENT_AND_CHILD.format(base="busybox"), "Dockerfile")
    child = dockerfile.stages[2]
    names = [stage.name for stage in build_order(dockerfile, child, {})]
    assert names == ["helper", "parent", "child"]


def test_a_failing_trigger_points_at_the_child_from_line(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    dockerfile = f"""
        FROM {base_image} AS parent
        ONBUILD RUN exit 3

        FROM parent
        ENV X=1
    """
    context = write_context(tmp_path / "ctx", dockerfile)
    out = str(tmp_path / "out.tar")
    insecure = ("--insecure-registry", registry.host)
    result = run_kiln("build", "--no-push", "--tar-path", out, *insecure, str(context))
    assert result.returncode != 0
    assert f"{context / 'Dockerfile'}:4\n" in result.stderr
    assert ">>> FROM parent" in result.stderr
    assert "exit code: 3" in result.stderr
