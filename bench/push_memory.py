"""Peak memory of `kiln push` for a large, incompressible layer (run by hand, not in CI).

Why: a push must stream blobs from disk (chunked PATCHes read lazily from the file), never hold a
layer in memory; Kaniko users hit OOM kills on large pushes. This script writes an OCI layout
with one layer of random bytes (default 1 GiB), starts a real docker-registry on loopback, runs
`kiln push` as a child process and reports the child's peak RSS (``ru_maxrss`` of the reaped
child, cross-checked by polling ``/proc/PID/status``).

    python bench/push_memory.py [--size-mib 1024] [--limit-mib 200]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.registry_server import RegistryServer  # noqa: E402

CHUNK = 4 * 1024 * 1024


def write_layout(directory: Path, size: int) -> None:
    """An OCI layout whose only layer is ``size`` random bytes."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layer = directory / "layer.tmp"
    hasher = hashlib.sha256()
    with layer.open("wb") as out:
        left = size
        while left:
            data = os.urandom(min(CHUNK, left))
            hasher.update(data)
            out.write(data)
            left -= len(data)
    layer_digest = "sha256:" + hasher.hexdigest()
    layer.rename(blobs / hasher.hexdigest())
    config = json.dumps(
        {"architecture": "amd64", "os": "linux",
         "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}
    ).encode()  # fmt: skip
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest, "size": size}],
        }
    ).encode()  # fmt: skip
    for data in (config, manifest):
        (blobs / hashlib.sha256(data).hexdigest()).write_bytes(data)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (directory / "index.json").write_text(json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
                       "size": len(manifest)}],
    }))  # fmt: skip


def vm_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--limit-mib", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
        layout = Path(tmp) / "layout"
        print(f"writing a {args.size_mib} MiB random layer ...", flush=True)
        write_layout(layout, args.size_mib * 1024 * 1024)
        with RegistryServer(workdir=Path(tmp) / "registry") as registry:
            dest = f"{registry.host}/bench/big:v1"
            start = time.monotonic()
            child = subprocess.Popen(
                [sys.executable, "-m", "kiln.cli.main", "push", str(layout), "-d", dest,
                 "--insecure-registry", registry.host],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            polled = 0
            while child.poll() is None:
                polled = max(polled, vm_rss_kib(child.pid))
                time.sleep(0.05)
            out, err = child.communicate()
            elapsed = time.monotonic() - start
            peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if child.returncode != 0:
            print(err, file=sys.stderr)
            return 1
    print(f"pushed {args.size_mib} MiB in {elapsed:.1f} s ({args.size_mib / elapsed:.0f} MiB/s)")
    print(f"digest {out.strip()}")
    print(
        f"kiln peak RSS: {peak_kib / 1024:.1f} MiB (ru_maxrss); polled max {polled / 1024:.1f} MiB"
    )
    ok = peak_kib / 1024 < args.limit_mib
    print("OK" if ok else f"OVER the {args.limit_mib} MiB limit")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
