"""The Kubernetes pod scenario without a cluster: run what kubelet would run, with podman.

kiln's executor image (built by kiln itself) runs as root **without** --privileged, with
podman's default capability set (no MKNOD) and then exactly Kubernetes' default set, a workspace
volume and the registry secret mounted as /kiln/.docker/config.json. It builds a Dockerfile with
`COPY .` and RUN, pushes to a registry that requires that secret, and the pushed image then runs.
There `auto` builds in place (Kaniko's model) and says why: only that gives RUN steps Docker's
/proc, /dev and /sys without mount rights (issue 10.15); `COPY .` of the context at /workspace
holds only context files (10.16); a non-root executor builds what it can and says what RUN
needs (10.17).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.conftest import REGISTRY_PASSWORD, REGISTRY_USER
from tests.support.kernel_files import KERNEL_FILES_CHECK, check_kernel_files
from tests.support.podman import Podman
from tests.support.registry_server import RegistryServer
from tests.support.source_servers import GitFixture
from tests.support.tools import umoci_unpack

# What a Kubernetes pod gets by default (containerd/CRI-O defaults).
KUBERNETES_DEFAULT_CAPS = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)  # fmt: skip

K8S_CAPS = ["--cap-drop=ALL", *(f"--cap-add={cap}" for cap in KUBERNETES_DEFAULT_CAPS)]

DOCKERFILE = """\
FROM {base}
COPY . /ctx/
RUN mkdir /out && {check}
RUN echo "built in a pod: $(cat /ctx/msg.txt)" > /out/out.txt && id -u >> /out/out.txt
CMD ["cat", "/out/out.txt"]
"""


def _secret(tmp_path: Path, registry: RegistryServer) -> Path:
    """What `kubectl create secret docker-registry` stores as .dockerconfigjson."""
    auth = base64.b64encode(f"{REGISTRY_USER}:{REGISTRY_PASSWORD}".encode()).decode()
    path = tmp_path / "secret" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
    return path


def _workspace(tmp_path: Path, base: str) -> Path:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "Dockerfile").write_text(DOCKERFILE.format(base=base, check=KERNEL_FILES_CHECK))
    (workspace / "msg.txt").write_text("hello")
    return workspace


def _run_executor(
    podman: Podman, image: str, mounts: list[str], *args: str, caps: list[str] | None = None
) -> str:
    options = [opt for mount in mounts for opt in ("-v", mount)] + (caps or [])
    result = podman.run(image, *args, options=options, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stderr


def _run_pushed(podman: Podman, ref: str, secret: Path) -> str:
    result = podman.run(ref, options=["--authfile", str(secret)])
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("capabilities", ["podman-default", "kubernetes-default"])
def test_executor_builds_and_pushes_without_privileges(
    executor_image: str,
    pod_base_image: str,
    registry: RegistryServer,
    auth_registry: RegistryServer,
    podman: Podman,
    tmp_path: Path,
    capabilities: str,
) -> None:
    workspace = _workspace(tmp_path, pod_base_image)
    secret = _secret(tmp_path, auth_registry)
    ref = f"{auth_registry.host}/pod/app:{capabilities}"
    kubernetes = capabilities == "kubernetes-default"
    # In Kubernetes' run, kiln's work dir is given inside the context: never read as context.
    work_dir = ["--work-dir=/workspace/.kiln-work"] if kubernetes else []
    log = _run_executor(
        podman,
        executor_image,
        [f"{workspace}:/workspace", f"{secret}:/kiln/.docker/config.json:ro"],
        "--context=dir:///workspace",
        "--dockerfile=Dockerfile",
        f"--destination={ref}",
        f"--insecure-registry={registry.host}",
        f"--insecure-registry={auth_registry.host}",
        "--digest-file=/workspace/digest",
        *work_dir,
        caps=K8S_CAPS if kubernetes else [],
    )
    assert (
        "Isolation: inplace (inside a container (/run/.containerenv exists); namespaces backend "
        "needs CAP_SYS_ADMIN; chroot isolation cannot give RUN steps /proc, /sys, /dev/shm and "
        "/dev/pts without mount rights (CAP_SYS_ADMIN))"
    ) in log
    if kubernetes:
        assert "Context: kiln's own /workspace/.kiln-work inside the context" in log
    assert REGISTRY_PASSWORD not in log
    assert (workspace / "digest").read_text().startswith("sha256:")
    assert _run_pushed(podman, ref, secret) == "built in a pod: hello\n0\n"
    rootfs = umoci_unpack(ref, tmp_path / "check", authfile=secret)
    check_kernel_files(rootfs)  # /proc, every /dev node, /dev/shm, /dev/pts, /sys; dd's hash
    assert sorted(p.name for p in (rootfs / "ctx").iterdir()) == ["Dockerfile", "msg.txt"]


def test_explicit_chroot_without_mount_rights_fails_before_the_build(
    executor_image: str, podman: Podman, tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    # Nothing listens on port 1: had kiln pulled before checking, the error would be that.
    (workspace / "Dockerfile").write_text("FROM 127.0.0.1:1/none/such:1\nRUN true\n")
    result = podman.run(
        executor_image,
        "--isolation=chroot",
        "--context=dir:///workspace",
        "--destination=127.0.0.1:1/none/out:1",
        options=["-v", f"{workspace}:/workspace"],  # podman's default capabilities
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        "the chroot isolation cannot run here: chroot isolation cannot give RUN steps /proc, "
        "/sys, /dev/shm and /dev/pts without mount rights (CAP_SYS_ADMIN)"
    ) in result.stderr
    assert "127.0.0.1:1" not in result.stderr


def test_a_non_root_executor_builds_without_run_and_says_what_it_needs(
    executor_image: str,
    pod_base_image: str,
    registry: RegistryServer,
    podman: Podman,
    tmp_path: Path,
) -> None:
    # runAsUser: 1000 (PodSecurity "restricted"-like) with Kubernetes' default capabilities.
    workspace = tmp_path / "workspace"
    workspace.mkdir(mode=0o755)
    workspace.chmod(0o755)  # readable by uid 1000 through the volume
    (workspace / "msg.txt").write_text("hello")
    (workspace / "copy.Dockerfile").write_text(f"FROM {pod_base_image}\nCOPY . /ctx/\n")
    (workspace / "run.Dockerfile").write_text(f"FROM {pod_base_image}\nRUN true\n")
    results = {}
    # "read-only": a read-only root filesystem without podman's /tmp tmpfs: no temporary dir.
    read_only = ["--read-only", "--read-only-tmpfs=false"]
    # "no-userns": podman's seccomp profile, but unshare(2) refused (as Docker's profile does
    # without CAP_SYS_ADMIN): kiln cannot re-execute itself in a user namespace.
    no_userns = ["--security-opt", f"seccomp={_seccomp_without_unshare(tmp_path)}"]
    for name, dockerfile, extra in [
        ("copy", "copy", []), ("run", "run", []), ("read-only", "copy", read_only),
        ("no-userns-copy", "copy", no_userns), ("no-userns-run", "run", no_userns),
    ]:  # fmt: skip
        results[name] = podman.run(
            executor_image,
            "--context=dir:///workspace",
            f"--dockerfile={dockerfile}.Dockerfile",
            f"--destination={registry.host}/pod/non-root:{name}",
            f"--insecure-registry={registry.host}",
            options=["--user", "1000", *K8S_CAPS, *extra, "-v", f"{workspace}:/workspace"],
            timeout=300,
        )
    copied, ran, read_only_run = results["copy"], results["run"], results["read-only"]
    assert copied.returncode == 0, copied.stderr[-3000:]
    rootfs = umoci_unpack(f"{registry.host}/pod/non-root:copy", tmp_path / "copy")
    names = sorted(p.name for p in (rootfs / "ctx").iterdir())
    assert names == ["copy.Dockerfile", "msg.txt", "run.Dockerfile"]  # only context files
    assert ran.returncode == 1, ran.stderr[-3000:]
    assert "Traceback" not in ran.stderr
    assert "no isolation backend can run RUN steps here" in ran.stderr
    assert "RUN needs kiln to run as root in its container (in Kubernetes: runAsUser: 0" in (
        ran.stderr
    )
    # Nowhere to write (issue 10.17 died with a traceback here): a message saying what it needs.
    assert read_only_run.returncode == 1, read_only_run.stderr[-3000:]
    assert "Traceback" not in read_only_run.stderr
    assert "no usable temporary directory for kiln's work dir (tried /tmp, /var/tmp" in (
        read_only_run.stderr
    )
    assert "hint: point --work-dir at a writable directory" in read_only_run.stderr
    # Without a user namespace: the same, as the plain user.
    for name in ("no-userns-copy", "no-userns-run"):
        assert "cannot enter a user namespace" in results[name].stderr
    assert results["no-userns-copy"].returncode == 0, results["no-userns-copy"].stderr[-3000:]
    rootfs = umoci_unpack(f"{registry.host}/pod/non-root:no-userns-copy", tmp_path / "no-userns")
    assert sorted(p.name for p in (rootfs / "ctx").iterdir()) == names
    no_run = results["no-userns-run"]
    assert no_run.returncode == 1 and "Traceback" not in no_run.stderr, no_run.stderr[-3000:]
    assert (
        "no isolation backend can run RUN steps here: namespaces backend needs root (running as "
        "uid 1000); chroot isolation needs root (running as uid 1000)"
    ) in no_run.stderr
    assert "hint: RUN needs kiln to run as root in its container" in no_run.stderr
    # ... and none of the runs put anything into the context (the working directory).
    assert sorted(p.name for p in workspace.iterdir()) == names


def _seccomp_without_unshare(tmp_path: Path) -> Path:
    """podman's default seccomp profile, with unshare(2) failing with EPERM."""
    profile = json.loads(Path("/usr/share/containers/seccomp.json").read_text())
    for rule in profile["syscalls"]:
        if rule["action"] == "SCMP_ACT_ALLOW" and "unshare" in rule.get("names", []):
            rule["names"].remove("unshare")
    profile["syscalls"].append({"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1})
    path = tmp_path / "seccomp-no-unshare.json"
    path.write_text(json.dumps(profile))
    return path


def test_without_the_secret_the_push_is_refused(
    executor_image: str,
    pod_base_image: str,
    registry: RegistryServer,
    auth_registry: RegistryServer,
    podman: Podman,
    tmp_path: Path,
) -> None:
    workspace = _workspace(tmp_path, pod_base_image)
    result = podman.run(
        executor_image,
        "--context=dir:///workspace",
        f"--destination={auth_registry.host}/pod/app:nosecret",
        f"--insecure-registry={registry.host}",
        f"--insecure-registry={auth_registry.host}",
        options=["-v", f"{workspace}:/workspace"],
        timeout=600,
    )
    assert result.returncode != 0
    assert "config.json" in result.stderr or "401" in result.stderr or "denied" in result.stderr


def test_executor_fetches_a_git_context_with_its_own_git(
    executor_image: str,
    pod_base_image: str,
    registry: RegistryServer,
    podman: Podman,
    git_sources: GitFixture,
    tmp_path: Path,
) -> None:
    # The image has no /usr/bin/git, no libc outside /kiln: the bundled git must do the fetch.
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "Dockerfile").write_text(
        f"FROM {pod_base_image}\nCOPY b.txt /b.txt\nRUN cat /b.txt > /copy.txt\n"
    )
    ref = f"{registry.host}/pod/from-git:1"
    _run_executor(
        podman,
        executor_image,
        [f"{workspace}:/workspace"],
        f"--context={git_sources.daemon_url}/app.git#v1:sub",
        "--dockerfile=/workspace/Dockerfile",
        f"--destination={ref}",
        f"--insecure-registry={registry.host}",
    )
    result = podman.run(ref, "cat", "/copy.txt")
    assert result.stdout == "b"


def test_executor_image_is_self_contained(executor_image: str, podman: Podman) -> None:
    # Nothing but /kiln (and what the runtime mounts): no shell, no system libc, no loader.
    script = (
        "import os, sys, ssl; "
        "skip = ('dev', 'proc', 'sys', 'etc', 'run'); "
        "assert oct(os.stat('/tmp').st_mode) == '0o41777', os.stat('/tmp'); "
        "print(sorted(p for p in os.listdir('/') if p not in skip)); "
        "print(sys.executable, os.path.exists('/lib64/ld-linux-x86-64.so.2'), "
        "os.path.exists('/bin/sh')); ca = os.environ['SSL_CERT_FILE']; "
        "print(ca, os.path.getsize(ca) > 10000, ssl.create_default_context().cert_store_stats())"
    )
    result = podman.run(executor_image, "-c", script, options=["--entrypoint", "/kiln/bin/python3"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "['kiln', 'tmp', 'workspace']"
    assert lines[1] == "/kiln/bin/python3 False False"
    assert lines[2].startswith("/kiln/ssl/certs.pem True {")
    assert "'x509_ca': 0" not in lines[2]  # the bundled CA certificates are loaded
    usage = podman.run(executor_image, "--help")  # the entrypoint is `kiln executor`
    assert usage.returncode == 0 and "--context-sub-path" in usage.stdout


def test_debug_variant_has_a_busybox_shell(podman: Podman, debug_executor_image: str) -> None:
    result = podman.run(
        debug_executor_image,
        "-c",
        'echo "$PATH"; ls /busybox/sh && /kiln/bin/python3 -m kiln.cli.main --version',
        options=["--entrypoint", "/busybox/sh"],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("/kiln/bin:/busybox:")
    assert result.stdout.splitlines()[-1] == "kiln 0.1.0"
