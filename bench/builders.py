"""The builders under test, each behind the same three calls: reset, build(+push), close.

Why a class per builder: each keeps state differently (kiln a cache directory, buildah a
storage root, Docker a daemon's data-root, Kaniko nothing: every run is a new container), and
"cold" means something concrete for each: a fresh store with nothing pulled and no layer cache.
``keep_state=True`` (the rebuild scenario) skips the reset, so the base image is already pulled
and unpacked from the previous build. ``build(..., cache=RegistryCache(...))`` turns on each
builder's own registry layer cache (the ``ci-rebuild``/``no-change`` scenarios).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from measure import Sample, run_measured
from trash import Trash

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.podman import CONTAINERS_CONF  # noqa: E402

#: The Kaniko executor image (an OCI archive): $KILN_BENCH_KANIKO, else ../shared/peers/ of the
#: main checkout (a worktree sits one level deeper, in /work/wt/NAME).
KANIKO_ARCHIVE = Path(
    os.environ.get("KILN_BENCH_KANIKO")
    or next(
        (
            str(up / "shared" / "peers" / "kaniko-executor-v1.28.3.oci.tar")
            for up in REPO.parents
            if (up / "shared" / "peers").is_dir()
        ),
        "kaniko-executor-v1.28.3.oci.tar",
    )
)
KANIKO_IMAGE = "localhost/kaniko-executor:anchor"


@dataclass(frozen=True)
class RegistryCache:
    """Where a builder keeps its layer cache in the registry.

    ``repo`` is the cache repository (kiln, Kaniko, buildah); ``image`` is the image whose inline
    cache Docker reads (``--cache-from``): the image the previous build pushed.
    """

    repo: str
    image: str


class Kiln:
    name = "kiln"

    def __init__(
        self,
        work: Path,
        registry: str,
        extra: list[str],
        src: Path,
        trash: Trash,
        name: str = "kiln",
    ) -> None:
        self.name = name
        self.state = work / f"{name}-state"
        self.trash = trash
        self.registries = registry.split(",")
        self.extra = extra
        self.log = work / f"{name}.log"
        self.src = src
        # Byte-compile kiln as any install does (pip, the executor image): this shell may set
        # PYTHONDONTWRITEBYTECODE, and recompiling every module would be timed on every run.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(src / "kiln")], check=True)

    def reset(self) -> None:
        self.trash.discard(self.state)
        (self.state / "work").mkdir(parents=True)

    def build(self, context: Path, ref: str, cache: RegistryCache | None = None) -> Sample:
        insecure = [f"--insecure-registry={host}" for host in self.registries]
        cached = ["--cache=true", f"--cache-repo={cache.repo}"] if cache else []
        argv = [
            sys.executable, "-m", "kiln.cli.main", "build", "-t", ref, *insecure, *cached,
            "--cache-dir", str(self.state / "cache"), "--work-dir", str(self.state / "work"),
            *self.extra, str(context),
        ]  # fmt: skip
        env = dict(os.environ, PYTHONPATH=str(self.src))
        return run_measured(argv, env=env, log=self.log, track_rss=True)

    def close(self) -> None:
        self.trash.discard(self.state)


class Buildah:
    name = "buildah"

    def __init__(self, work: Path, registry: str, trash: Trash) -> None:
        self.state = work / "buildah-state"
        self.log = work / "buildah.log"
        self.trash = trash

    def _base(self) -> list[str]:
        return [
            "buildah", "--root", str(self.state / "root"), "--runroot", str(self.state / "run"),
            "--storage-driver", "overlay",
        ]  # fmt: skip

    def reset(self) -> None:
        # Set the whole store aside rather than `buildah rmi` it: see trash.py.
        subprocess.run(["umount", "-R", str(self.state / "root" / "overlay")], capture_output=True)
        self.trash.discard(self.state)
        self.state.mkdir(parents=True)

    def build(self, context: Path, ref: str, cache: RegistryCache | None = None) -> Sample:
        cached = f"--layers --cache-from {cache.repo} --cache-to {cache.repo} " if cache else ""
        script = (
            f"{' '.join(self._base())} bud --isolation chroot --tls-verify=false {cached}"
            f"--format docker -t {ref} {context} && "
            f"{' '.join(self._base())} push --tls-verify=false {ref} docker://{ref}"
        )
        return run_measured(["sh", "-c", script], log=self.log)

    def close(self) -> None:
        subprocess.run(["umount", "-R", str(self.state / "root" / "overlay")], capture_output=True)
        self.trash.discard(self.state)


class Docker:
    """dockerd with a private data-root, no iptables and no bridge; BuildKit builds.

    Cold means a fresh data-root: ``reset`` stops the daemon, sets its data aside (see
    trash.py; ``docker system prune`` would delete every layer's files right before the next
    build) and starts it again. The restarts are not timed.
    """

    name = "docker"

    def __init__(self, work: Path, registry: str, trash: Trash) -> None:
        self.state = work / "docker-state"
        self.log = work / "docker.log"
        self.trash = trash
        trash.discard(self.state)
        self.state.mkdir(parents=True)
        self.sock = self.state / "docker.sock"
        config = {
            "data-root": str(self.state / "data"), "exec-root": str(self.state / "exec"),
            "pidfile": str(self.state / "docker.pid"), "hosts": [f"unix://{self.sock}"],
            "iptables": False, "ip6tables": False, "ip-forward": False, "ip-masq": False,
            "bridge": "none", "storage-driver": "overlay2", "features": {"buildkit": True},
        }  # fmt: skip
        (self.state / "daemon.json").write_text(json.dumps(config))
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}", DOCKER_BUILDKIT="1")
        self.daemon = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        daemon = subprocess.Popen(
            ["dockerd", "--config-file", str(self.state / "daemon.json")],
            stdout=(self.state / "dockerd.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        for _ in range(300):
            if self._docker("info").returncode == 0:
                return daemon
            time.sleep(0.2)
        raise RuntimeError(f"dockerd did not start; see {self.state / 'dockerd.log'}")

    def _stop(self) -> None:
        self.daemon.terminate()
        try:
            self.daemon.wait(30)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()

    def _docker(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["/usr/bin/docker", *args], env=self.env, capture_output=True)

    def reset(self) -> None:
        self._stop()
        for name in ("data", "exec"):
            subprocess.run(["umount", "-R", str(self.state / name)], capture_output=True)
            self.trash.discard(self.state / name)
        self.daemon = self._start()

    def build(self, context: Path, ref: str, cache: RegistryCache | None = None) -> Sample:
        # Inline cache: the pushed image carries its cache metadata; the next build reads it.
        cached = f"--build-arg BUILDKIT_INLINE_CACHE=1 --cache-from {cache.image} " if cache else ""
        script = (
            f"/usr/bin/docker build --network host {cached}-t {ref} {context} && "
            f"/usr/bin/docker push {ref}"
        )
        daemons = [self.daemon.pid, *_pids_named("containerd")]
        return run_measured(["sh", "-c", script], env=self.env, log=self.log, daemons=daemons)

    def close(self) -> None:
        self._stop()
        for name in ("data", "exec"):
            subprocess.run(["umount", "-R", str(self.state / name)], capture_output=True)
        self.trash.discard(self.state)


class Kaniko:
    """The Kaniko executor image run the way a pod runs it, by podman (private storage).

    Kaniko writes its image only by pushing it, and each run is a new container, so every run
    starts from empty local state; ``reset`` has nothing to do. Its CPU is the container's
    (cpuacct of a cgroup parent of its own, which keeps its children's usage) plus podman's.
    """

    name = "kaniko"
    cgroup = "kiln-bench-kaniko"

    def __init__(self, work: Path, trash: Trash) -> None:
        self.state = work / "kaniko-state"
        self.log = work / "kaniko.log"
        self.trash = trash
        trash.discard(self.state)
        self.state.mkdir(parents=True)
        (self.state / "containers.conf").write_text(CONTAINERS_CONF)
        self.env = dict(
            os.environ, CONTAINERS_CONF=str(self.state / "containers.conf"), HOME=str(self.state)
        )
        loaded = subprocess.run(
            [*self._podman(), "load", "-i", str(KANIKO_ARCHIVE)],
            env=self.env,
            capture_output=True,
            text=True,
        )
        if loaded.returncode != 0:
            sys.exit(
                f"cannot load Kaniko from {KANIKO_ARCHIVE} (set KILN_BENCH_KANIKO): "
                + loaded.stderr
            )

    def _podman(self) -> list[str]:
        return [
            "podman", "--root", str(self.state / "root"), "--runroot", str(self.state / "run"),
            "--storage-driver", "overlay", "--runtime", "runc",
        ]  # fmt: skip

    def reset(self) -> None:
        pass

    def build(self, context: Path, ref: str, cache: RegistryCache | None = None) -> Sample:
        argv = [
            *self._podman(), "run", "--rm", "--network", "host",
            "--cgroup-parent", f"/{self.cgroup}", "-v", f"{context}:/workspace", KANIKO_IMAGE,
            "--context", "dir:///workspace", "--dockerfile", "/workspace/Dockerfile",
            "--destination", ref, "--insecure", "--insecure-pull",
        ]  # fmt: skip
        if cache:
            argv += ["--cache=true", f"--cache-repo={cache.repo}"]
        before = self._container_cpu()
        sample = run_measured(argv, env=self.env, log=self.log)
        return Sample(sample.wall, sample.cpu + self._container_cpu() - before)

    def _container_cpu(self) -> float:
        usage = Path("/sys/fs/cgroup/cpuacct", self.cgroup, "cpuacct.usage")
        return int(usage.read_text()) / 1e9 if usage.exists() else 0.0

    def close(self) -> None:
        subprocess.run(["umount", "-R", str(self.state / "root" / "overlay")], capture_output=True)
        self.trash.discard(self.state)


def _pids_named(name: str) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if Path(entry.path, "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids
