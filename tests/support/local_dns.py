"""A DNS server on loopback that says no name exists, and a way to run a command (kiln's CLI, or a
test function in a child Python) whose glibc resolver asks only that server.

Why: a test of "DNS says the name does not exist" needs a real ``getaddrinfo`` failure, but the
machine's configured resolver may be off the machine: a query to it is traffic leaving the
test box, and a CI resolver that times out instead of answering NXDOMAIN makes the test slow
or flaky. glibc takes its servers only from ``/etc/resolv.conf``, always on port 53, so the
responder listens on port 53 of a loopback address and the command runs in a private mount
namespace (``unshare --mount``, needs root) where ``/etc/resolv.conf`` is bind-mounted to a file
naming that address, and ``/etc/nsswitch.conf`` to a copy whose ``hosts`` line is
``files dns`` (so nss-resolve or mdns cannot route the lookup elsewhere; a running nscd would
still be asked first, and there is none on the test machines). Only that command
sees them; the test process and the rest of the machine keep their own files. The test
process itself cannot do this: a multi-threaded process cannot enter a new mount namespace.

Run as ``python -m tests.support.local_dns MODULE:FUNCTION`` with JSON ``[args, kwargs]`` on
stdin, it calls the function and prints its JSON result: ``LocalDNS.call`` uses that.
"""

from __future__ import annotations

import errno
import importlib
import json
import socketserver
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Where the responder may listen, in order: port 53 of 127.0.0.1, else of another loopback
#: address (another test session on this machine may already hold 127.0.0.1:53).
CANDIDATE_ADDRESSES = ["127.0.0.1", *(f"127.0.53.{n}" for n in range(1, 255))]
NXDOMAIN = 3
_REPO = Path(__file__).resolve().parents[2]
#: Bind-mount the files named by $0 (resolv.conf) and $1 (nsswitch.conf), then run the rest.
_MOUNT_SCRIPT = (
    'mount --bind "$0" /etc/resolv.conf && mount --bind "$1" /etc/nsswitch.conf'
    ' && shift && exec "$@"'
)


def nxdomain_reply(query: bytes) -> tuple[bytes, str] | None:
    """The NXDOMAIN answer to a DNS ``query`` and the name it asked; None if it is not a
    well-formed one-question query (the header is 12 bytes: id, flags, four counts)."""
    if len(query) < 12:
        return None
    ident, flags, questions = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or questions != 1:  # a response, or not the single question glibc asks
        return None
    labels: list[str] = []
    offset = 12
    while offset < len(query) and query[offset] != 0:
        length = query[offset]
        labels.append(query[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    end = offset + 1 + 4  # the root label, then QTYPE and QCLASS
    if end > len(query):
        return None
    # QR=1, the query's opcode and RD echoed, RA=1, RCODE=3; one question, no records.
    answer_flags = 0x8000 | (flags & 0x7900) | 0x0080 | NXDOMAIN
    header = struct.pack("!HHHHHH", ident, answer_flags, 1, 0, 0, 0)
    return header + query[12:end], ".".join(labels).lower()


class NxdomainResponder:
    """Answers every UDP DNS query on ``address:53`` with NXDOMAIN and records the names asked
    in ``queries``; use as a context manager."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        queries = self.queries

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = nxdomain_reply(data)
                if reply is not None:
                    queries.append(reply[1])
                    sock.sendto(reply[0], self.client_address)

        self._server = _bind(Handler)
        self.address = str(self._server.server_address[0])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> NxdomainResponder:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _bind(handler: type[socketserver.BaseRequestHandler]) -> socketserver.UDPServer:
    """A UDP server on port 53 of the first candidate loopback address that is free."""
    for address in CANDIDATE_ADDRESSES:
        try:
            return socketserver.UDPServer((address, 53), handler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:  # held by someone else: try the next address
                raise
    raise RuntimeError("port 53 is taken on every candidate loopback address")


class LocalDNS:
    """An ``NxdomainResponder`` and the files that point a mount namespace's glibc at it."""

    def __init__(self, responder: NxdomainResponder, directory: Path) -> None:
        self.responder = responder
        resolv = directory / "resolv.conf"
        resolv.write_text(f"nameserver {responder.address}\noptions attempts:1\n")
        nsswitch = directory / "nsswitch.conf"
        nsswitch.write_text(_nsswitch_with_plain_dns(Path("/etc/nsswitch.conf")))
        #: Put in front of a command to run it with this resolver (see the module docstring).
        self.prefix = [
            "unshare", "--mount", "--propagation", "private",
            "sh", "-c", _MOUNT_SCRIPT, str(resolv), str(nsswitch),
        ]  # fmt: skip

    @property
    def queries(self) -> list[str]:
        """The names asked so far, lower-case, one entry per query (A and AAAA separately)."""
        return self.responder.queries

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``function(*args, **kwargs)`` in a child Python under this resolver and return
        its JSON result. The function must be importable (module level) and take and return
        JSON values; the child inherits ``os.environ`` as it is now."""
        target = f"{function.__module__}:{function.__qualname__}"
        done = subprocess.run(
            [*self.prefix, sys.executable, "-m", "tests.support.local_dns", target],
            input=json.dumps([args, kwargs]),
            capture_output=True,
            text=True,
            cwd=_REPO,
            timeout=120,
        )
        if done.returncode != 0:
            raise AssertionError(f"{target} failed in the child:\n{done.stderr}")
        return json.loads(done.stdout.splitlines()[-1])


def _nsswitch_with_plain_dns(original: Path) -> str:
    """``original`` (if any) with its ``hosts`` line replaced by ``hosts: files dns``."""
    lines = original.read_text().splitlines() if original.exists() else []
    kept = [line for line in lines if line.split(":")[0].strip() != "hosts"]
    return "\n".join([*kept, "hosts: files dns", ""])


def _child_main(target: str) -> None:
    """Call ``MODULE:FUNCTION`` with the JSON ``[args, kwargs]`` on stdin; print the result."""
    module_name, _, qualname = target.partition(":")
    function: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        function = getattr(function, part)
    args, kwargs = json.loads(sys.stdin.read())
    sys.stdout.write("\n" + json.dumps(function(*args, **kwargs)) + "\n")


if __name__ == "__main__":
    _child_main(sys.argv[1])
