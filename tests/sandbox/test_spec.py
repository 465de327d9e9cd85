"""RunSpec is a validated, immutable value; no kernel features needed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kiln.sandbox import RunSpec
from kiln.sandbox._plan import FileBind, SandboxPlan


def spec(**overrides: object) -> RunSpec:
    fields: dict[str, object] = {
        "rootfs": Path("/r"),
        "argv": ("true",),
        "env": ("PATH=/bin",),
        "cwd": "/",
        "uid": 0,
        "gid": 0,
        "groups": (),
    }
    fields.update(overrides)
    return RunSpec(**fields)  # type: ignore[arg-type]


def test_defaults_and_immutability() -> None:
    s = spec()
    assert (s.hostname, s.network, s.stdout, s.stderr) == ("kiln", "host", None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.cwd = "/tmp"  # type: ignore[misc]


def test_lists_become_tuples() -> None:
    s = spec(argv=["sh", "-c", "true"], env=["A=1"], groups=[5], rootfs="/r")
    assert s.argv == ("sh", "-c", "true")
    assert s.env == ("A=1",)
    assert s.groups == (5,)
    assert s.rootfs == Path("/r")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"argv": ()}, "argv must not be empty"),
        ({"cwd": "tmp"}, "cwd must be an absolute path"),
        ({"network": "bridge"}, "network must be one of"),
        ({"env": ("NOEQUALS",)}, "KEY=VALUE"),
    ],
)
def test_rejects_invalid_values(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec(**overrides)


def test_plan_round_trips_through_json() -> None:
    plan = SandboxPlan(
        rootfs="/r",
        argv=("sh", "-c", "echo é"),
        env=("A=1", "B=x=y"),
        cwd="/w",
        uid=1000,
        gid=100,
        groups=(1, 2),
        hostname="h",
        network="none",
        file_binds=(FileBind("/etc/hosts", "etc/hosts"),),
    )
    assert SandboxPlan.from_json(plan.to_json()) == plan


def test_public_names() -> None:
    import kiln.sandbox

    assert set(kiln.sandbox.__all__) == {
        "BinarySink",
        "ChrootRunner",
        "InplaceRunner",
        "NamespacesRunner",
        "Output",
        "RunSpec",
        "Runner",
        "stop_running_steps",
    }
    assert all(hasattr(kiln.sandbox, name) for name in kiln.sandbox.__all__)
