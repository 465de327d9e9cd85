"""Resource errors (scripted errnos; tests/e2e/test_out_of_space.py fills a real tmpfs) and
how each edge spells a remedy."""

from __future__ import annotations

import errno
import os

import pytest

from kiln.builder.resources import resource_errors
from kiln.cli.hints import as_flag, render_for_cli
from kiln.errors import Remedy, ResourceError


@pytest.mark.parametrize(
    ("code", "reason", "cli_hint"),
    [
        (errno.ENOSPC, "no space left on the device", "point --work-dir at a larger"),
        (errno.EDQUOT, "the disk quota is exhausted", "point --work-dir at a larger"),
        (errno.EMFILE, "too many open files", "(--jobs 1)"),
        (errno.ENFILE, "too many open files in the system", "(--jobs 1)"),
        (errno.ENOMEM, "out of memory", "(--jobs 1)"),
    ],
)
def test_resource_errnos_become_one_error(code: int, reason: str, cli_hint: str) -> None:
    with pytest.raises(ResourceError) as info, resource_errors("a layer blob", "/w/scratch"):
        raise OSError(code, os.strerror(code), "/w/scratch/x.layer")
    error = info.value
    assert error.directory == "/w/scratch" and error.what == "a layer blob"
    assert error.message.startswith(f"{reason}") and "a layer blob in /w/scratch" in error.message
    assert cli_hint in render_for_cli(error)
    assert "--" not in str(error)  # the Python spelling: keyword arguments
    assert isinstance(error.__cause__, OSError)


def test_memory_error_is_a_resource_error() -> None:
    expected = "out of memory while writing x in /d"
    with pytest.raises(ResourceError, match=expected), resource_errors("x", "/d"):
        raise MemoryError


def test_other_errors_pass_through() -> None:
    with pytest.raises(PermissionError), resource_errors("x", "/d"):
        raise PermissionError(errno.EACCES, "denied")


def test_the_option_that_chose_the_directory_is_named() -> None:
    with pytest.raises(ResourceError) as info, resource_errors("t", "/out", "tar_path"):
        raise OSError(errno.ENOSPC, "full")
    assert "point --tar-path at a larger filesystem" in render_for_cli(info.value)
    assert "point tar_path=... at a larger filesystem" in str(info.value)


@pytest.mark.parametrize(
    ("remedy", "flag", "keyword"),
    [
        (
            Remedy("insecure_registries", ["reg:5000"]),
            "--insecure-registry reg:5000",
            "insecure_registries=['reg:5000']",
        ),
        (Remedy("skip_push_permission_check", True), "--skip-push-permission-check", "=True"),
        (Remedy("image_format", "oci"), "--image-format oci", "image_format='oci'"),
        (
            Remedy("registry_client_certs", {"h:1": ("/c.crt", "/c.key")}),
            "--registry-client-cert h:1=/c.crt,/c.key",
            "registry_client_certs={'h:1': ('/c.crt', '/c.key')}",
        ),
        (Remedy("work_dir"), "--work-dir", "work_dir=..."),
    ],
)
def test_remedy_spellings(remedy: Remedy, flag: str, keyword: str) -> None:
    assert as_flag(remedy) == flag
    assert keyword in remedy.as_keyword()


def test_push_permission_hint_keeps_a_plain_hint_with_braces() -> None:
    from kiln.builder.publish import _template
    from kiln.errors import AuthError

    plain = AuthError("denied", reference="r/x", hint="scope {repository:x:push} refused")
    wrapped = ResourceError("m", directory=None, what="w", hint=_template(plain) + " {0}",
                            remedies=(Remedy("skip_push_permission_check", True),))  # fmt: skip
    assert render_for_cli(wrapped) == (
        "m\nhint: scope {repository:x:push} refused --skip-push-permission-check"
    )
    broken = ResourceError("m", directory=None, what="w", hint="{2}", remedies=(Remedy("a"),))
    assert str(broken) == "m\nhint: {2} (a=...)"
