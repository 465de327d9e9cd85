"""What the RUN process sees and returns: output, env, cwd, ids, exit status, PATH lookup."""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.errors import SandboxError
from kiln.sandbox import NamespacesRunner, RunSpec

pytestmark = pytest.mark.root

RunSh = Callable[..., tuple[int, str]]


def test_output_is_captured_in_a_file_object(run_sh: RunSh) -> None:
    assert run_sh("echo hello; echo oops >&2") == (0, "hello\noops\n")


def test_stdout_and_stderr_can_go_to_separate_fds(
    runner: NamespacesRunner, rootfs: Path, tmp_path: Path
) -> None:
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        spec = RunSpec(
            rootfs, ("sh", "-c", "echo to-out; echo to-err >&2"), ("PATH=/bin",), "/", 0, 0, (),
            stdout=out.fileno(), stderr=err,
        )  # fmt: skip
        assert runner.run(spec) == 0
    assert out_path.read_text() == "to-out\n"
    assert err_path.read_text() == "to-err\n"


def test_stdin_is_dev_null(run_sh: RunSh) -> None:
    assert run_sh("cat; readlink /proc/self/fd/0") == (0, "/dev/null\n")


def test_only_stdio_is_open_in_the_command(run_sh: RunSh) -> None:
    # `ls` runs as a child (`; true` stops sh from exec'ing it), so its own fds do not show.
    assert run_sh("ls /proc/$$/fd; true") == (0, "0\n1\n2\n")


def test_env_is_exactly_what_was_given(run_sh: RunSh, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_HOST_SECRET", "leak")
    env = ("PATH=/bin", "A=1", "B=two words", "C=x=y")
    status, out = run_sh("", argv=("/bin/env",), env=env)
    assert status == 0
    assert sorted(out.splitlines()) == sorted(env)


def test_cwd_is_honoured(run_sh: RunSh, rootfs: Path) -> None:
    (rootfs / "work" / "dir").mkdir(parents=True)
    assert run_sh("pwd; ls", cwd="/work/dir") == (0, "/work/dir\n")


def test_missing_cwd_is_a_sandbox_error(run_sh: RunSh) -> None:
    with pytest.raises(SandboxError, match=r'chdir to cwd \("/nope"\) failed: no such file'):
        run_sh("true", cwd="/nope")


def test_uid_gid_and_groups(run_sh: RunSh) -> None:
    status, out = run_sh("id", uid=1000, gid=1000, groups=(1000, 100))
    assert status == 0
    assert out.strip() == "uid=1000(app) gid=1000(app) groups=100(users),1000(app)"


def test_root_by_default_and_files_owned_accordingly(run_sh: RunSh, rootfs: Path) -> None:
    assert run_sh("id -u; touch /tmp/as-root")[1] == "0\n"
    assert run_sh("touch /tmp/as-nobody", uid=65534, gid=65534) == (0, "")
    assert (rootfs / "tmp" / "as-root").stat().st_uid == 0
    st = (rootfs / "tmp" / "as-nobody").stat()
    assert (st.st_uid, st.st_gid) == (65534, 65534)


@pytest.mark.parametrize("code", [0, 3, 255])
def test_exit_status_passes_through(run_sh: RunSh, code: int) -> None:
    assert run_sh(f"exit {code}")[0] == code


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_by_signal_reports_128_plus_n(run_sh: RunSh, sig: signal.Signals) -> None:
    assert run_sh(f"kill -{sig.name[3:]} $$")[0] == 128 + sig


def test_command_is_looked_up_in_the_containers_path(run_sh: RunSh, rootfs: Path) -> None:
    (rootfs / "opt" / "tools").mkdir(parents=True)
    tool = rootfs / "opt" / "tools" / "hello"
    tool.write_text("#!/bin/sh\necho from-container-path\n")
    tool.chmod(0o755)
    # /opt/tools exists only inside the rootfs, so a lookup on the host's PATH cannot find it.
    assert run_sh("", argv=("hello",), env=("PATH=/opt/tools:/bin",)) == (
        0,
        "from-container-path\n",
    )


def test_unknown_command_exits_127_with_dockers_message(run_sh: RunSh) -> None:
    status, out = run_sh("", argv=("no-such-tool", "x"))
    assert status == 127
    assert 'exec: "no-such-tool": executable file not found in $PATH' in out


def test_no_path_lookup_without_path(run_sh: RunSh) -> None:
    status, _ = run_sh("", argv=("sh", "-c", "true"), env=("HOME=/",))
    assert status == 127


def test_missing_absolute_command_exits_127(run_sh: RunSh) -> None:
    status, out = run_sh("", argv=("/bin/nope",))
    assert status == 127
    assert '"/bin/nope"' in out


def test_non_executable_command_exits_126(run_sh: RunSh, rootfs: Path) -> None:
    (rootfs / "script").write_text("#!/bin/sh\n")
    assert run_sh("", argv=("/script",))[0] == 126


def test_sigpipe_has_its_default_disposition(run_sh: RunSh) -> None:
    # Python ignores SIGPIPE; if that leaked into the command, `yes` would never stop.
    assert run_sh("yes | head -n 2") == (0, "y\ny\n")


def test_output_fd_order_is_kept_with_kilns_own_writes(
    runner: NamespacesRunner, rootfs: Path, tmp_path: Path
) -> None:
    with open(tmp_path / "log", "wb") as log:
        log.write(b"before\n")  # buffered in Python until flushed
        spec = RunSpec(rootfs, ("echo", "during"), ("PATH=/bin",), "/", 0, 0, (), stdout=log)
        runner.run(spec)
        log.write(b"after\n")
    assert (tmp_path / "log").read_bytes() == b"before\nduring\nafter\n"


def test_a_failing_output_object_is_reported(runner: NamespacesRunner, rootfs: Path) -> None:
    class Broken(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b: object) -> int:
            raise OSError(28, os.strerror(28))

    spec = RunSpec(rootfs, ("echo", "x"), ("PATH=/bin",), "/", 0, 0, (), stdout=Broken())
    with pytest.raises(OSError, match="No space left"):
        runner.run(spec)
