"""The offline demo behind scripts/demo (see README): build examples/hello and run it."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.base_image import make_oci_layout, push_layout  # noqa: E402
from tests.support.podman import Podman  # noqa: E402
from tests.support.registry_server import RegistryServer  # noqa: E402


def main() -> int:
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kiln-demo-") as tmp, RegistryServer() as registry:
        work = Path(tmp)
        base = f"{registry.host}/base/busybox:latest"
        print(f"== making a busybox base image and pushing it to {base}")
        push_layout(make_oci_layout(work / "base"), "latest", base)
        image = f"{registry.host}/demo/hello:1"
        print(f"== kiln build -t {image} examples/hello")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "kiln.cli.main",
                "build",
                "-t",
                image,
                "--insecure-registry",
                registry.host,
                "--build-arg",
                f"BASE={base}",
                "--tar-path",
                str(out / "hello.tar"),
                "--digest-file",
                str(out / "hello.digest"),
                str(ROOT / "examples" / "hello"),
            ],
            check=True,
        )
        print(f"== wrote {out / 'hello.tar'}; podman run {image}")
        ran = Podman(work / "podman").run(image)
        print(ran.stdout, end="")
        if ran.returncode != 0:
            print(ran.stderr, file=sys.stderr)
        return ran.returncode


if __name__ == "__main__":
    sys.exit(main())
