"""Registry credentials, read from Docker's ``config.json`` exactly as Docker reads them.

Why: kiln runs where Kaniko runs, with a mounted ``config.json`` secret (or a credential helper)
as the only source of credentials, so it must find the same entry Docker would. Secrets never
appear in reprs, logs or error messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kiln.errors import AuthError
from kiln.registry.reference import normalize_registry

DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
_HELPER_TIMEOUT = 60.0
_TOKEN_USER = "<token>"  # credential helpers return identity tokens under this user name


@dataclass(frozen=True)
class Credentials:
    """Username/password, or a refresh (identity) token, or a ready registry bearer token.

    ``source`` says where they came from (the config.json path, the credential helper, ``kiln
    login``), so an error after a 401/403 can say which credentials the registry refused.
    """

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    registry_token: str | None = field(default=None, repr=False)
    source: str = field(default="", compare=False)

    def __repr__(self) -> str:
        secrets = [
            name for name in ("password", "identity_token", "registry_token") if getattr(self, name)
        ]
        return f"Credentials(username={self.username!r}, set={secrets}, source={self.source!r})"

    def describe(self) -> str:
        """Whose they are, never the secret: ``user 'bob'``, ``an identity token``..."""
        if self.username and self.username != _TOKEN_USER:
            return f"user {self.username!r}"
        if self.identity_token:
            return "an identity token"
        return "a registry token" if self.registry_token else "no usable secret"

    @property
    def has_basic(self) -> bool:
        """True when a username and password can be sent as HTTP basic auth."""
        return bool(self.username) and self.password is not None


def config_path(config_dir: Path | None = None) -> Path:
    """``config_dir/config.json``, else ``$DOCKER_CONFIG/config.json``, else ``~/.docker/...``."""
    if config_dir is None:
        env = os.environ.get("DOCKER_CONFIG")
        config_dir = Path(env) if env else Path.home() / ".docker"
    return config_dir / "config.json"


def config_key_hostname(key: str) -> str:
    """Docker's ``ConvertToHostname``: strip a scheme and any path from an ``auths`` key."""
    for prefix in ("http://", "https://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    return key.split("/", 1)[0]


def _is_hub(registry: str) -> bool:
    return normalize_registry(registry) == "docker.io"


def _server_url(registry: str) -> str:
    """The server URL Docker hands to credential helpers for ``registry``."""
    return DOCKER_HUB_CONFIG_KEY if _is_hub(registry) else registry


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise AuthError(
            f"cannot read Docker config {path}: {type(exc).__name__}",
            reference=str(path),
            hint='fix or remove the file; it must be JSON like {"auths": {...}}',
        ) from None
    if not isinstance(data, dict):
        raise AuthError(f"Docker config {path} is not a JSON object", reference=str(path))
    return data


def _from_auth_entry(entry: Any, registry: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    username = entry.get("username") or None
    password = entry.get("password")
    encoded = entry.get("auth")
    if encoded:
        try:
            decoded = base64.b64decode(encoded, validate=False).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        if ":" not in decoded:
            raise AuthError(
                "the 'auth' entry in the Docker config is not base64 of 'user:password'",
                reference=registry,
            )
        username, password = decoded.split(":", 1)
    creds = Credentials(
        username=username,
        password=password if password is not None else None,
        identity_token=entry.get("identitytoken") or None,
        registry_token=entry.get("registrytoken") or None,
    )
    if not (creds.has_basic or creds.identity_token or creds.registry_token):
        return None
    return creds


def _auths_entry(auths: dict[str, Any], registry: str) -> Any:
    if _is_hub(registry):
        wanted = {"docker.io", "index.docker.io", "registry-1.docker.io"}
        if DOCKER_HUB_CONFIG_KEY in auths:
            return auths[DOCKER_HUB_CONFIG_KEY]
    else:
        wanted = {registry}
        if registry in auths:
            return auths[registry]
    for key, entry in auths.items():
        if config_key_hostname(key) in wanted:
            return entry
    return None


def run_credential_helper(helper: str, registry: str) -> Credentials | None:
    """Ask ``docker-credential-HELPER get`` for ``registry``; None if it has nothing stored."""
    program = f"docker-credential-{helper}"
    try:
        result = subprocess.run(
            [program, "get"],
            input=_server_url(registry).encode(),
            capture_output=True,
            timeout=_HELPER_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise AuthError(
            f"credential helper {program} is not on PATH",
            reference=registry,
            hint="install it or remove it from credHelpers/credsStore in the Docker config",
        ) from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper {program} timed out", reference=registry) from None
    if result.returncode != 0:
        if b"credentials not found" in result.stdout.lower():
            return None
        raise AuthError(
            f"credential helper {program} failed with exit status {result.returncode}",
            reference=registry,
        )
    try:
        data = json.loads(result.stdout)
        username, secret = data.get("Username") or None, data.get("Secret")
    except (ValueError, AttributeError):
        raise AuthError(
            f"credential helper {program} printed something that is not JSON", reference=registry
        ) from None
    if not secret:
        return None
    source = f"the credential helper {program}"
    if username == _TOKEN_USER:
        return Credentials(identity_token=secret, source=source)
    return Credentials(username=username, password=secret, source=source)


def _helper_for(config: dict[str, Any], registry: str) -> str | None:
    helpers = config.get("credHelpers") or {}
    keys = [registry]
    if _is_hub(registry):
        keys = ["docker.io", "index.docker.io", "registry-1.docker.io", DOCKER_HUB_CONFIG_KEY]
    for key in keys:
        if isinstance(helpers, dict) and helpers.get(key):
            return str(helpers[key])
    store = config.get("credsStore")
    return str(store) if store else None


def load_credentials(registry: str, config_dir: Path | None = None) -> Credentials | None:
    """Credentials for ``registry`` (host[:port] or ``docker.io``) from Docker's config.

    Order as in Docker: ``credHelpers[registry]``, then ``credsStore``, then ``auths``. Returns
    None when nothing is configured (anonymous access).
    """
    path = config_path(config_dir)
    config = _read_config(path)
    helper = _helper_for(config, registry)
    if helper is not None:
        found = run_credential_helper(helper, registry)
        if found is not None:
            return found
    auths = config.get("auths") or {}
    if not isinstance(auths, dict):
        return None
    found = _from_auth_entry(_auths_entry(auths, registry), registry)
    return replace(found, source=str(path)) if found is not None else None


def save_credentials(
    registry: str, username: str, password: str, config_dir: Path | None = None
) -> Path:
    """Store ``username``/``password`` for ``registry`` in ``config.json`` as ``docker login``
    does (``auths[KEY].auth`` = base64 of ``user:password``, Docker Hub under its v1 URL),
    keeping every other entry; the file is written atomically with mode 0600."""
    path = config_path(config_dir)
    config = _read_config(path)
    auths = config.get("auths")
    if not isinstance(auths, dict):
        auths = {}
    key = _server_url(normalize_registry(registry))
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    auths[key] = {"auth": token}
    config["auths"] = auths
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(config, out, indent="\t")
    os.replace(temp, path)
    return path
