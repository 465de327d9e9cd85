"""Spelling a library error's remedies as the flags a CLI user types.

Why here: errors from kiln's library name the option that would fix them by its field name
(``Remedy("insecure_registries", ["reg:5000"])``), because a Python caller passes keyword
arguments; only the command line knows that this field is ``--insecure-registry``.
"""

from __future__ import annotations

from collections.abc import Mapping

from kiln.errors import KilnError, Remedy

#: Option fields whose flag is not simply ``--field-with-dashes``.
FLAGS = {
    "insecure_registries": "--insecure-registry",
    "insecure_push": "--insecure",
    "skip_tls_verify_registries": "--skip-tls-verify-registry",
    "skip_tls_verify_push": "--skip-tls-verify",
    "registry_certificates": "--registry-certificate",
    "registry_client_certs": "--registry-client-cert",
    "registry_mirrors": "--registry-mirror",
    "registry_maps": "--registry-map",
    "destinations": "--destination",
    "build_args": "--build-arg",
    "labels": "--label",
    "ignore_paths": "--ignore-path",
    "pull_retry": "--image-download-retry",
}


def as_flag(remedy: Remedy) -> str:
    """``--flag VALUE`` for a remedy (``--flag`` alone for ``True``; ``--flag VALUE`` for the
    first of several values; ``--flag KEY=VALUE`` for a mapping, tuples joined by commas)."""
    flag = FLAGS.get(remedy.option, "--" + remedy.option.replace("_", "-"))
    value = remedy.value
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if isinstance(value, Mapping):
        key, item = next(iter(value.items()))
        item = ",".join(map(str, item)) if isinstance(item, list | tuple) else item
        value = f"{key}={item}"
    if value is None:
        return flag
    if value is True:
        return flag
    if value is False:
        return f"{flag}=false"
    return f"{flag} {value}"


def render_for_cli(exc: KilnError) -> str:
    """The error as `kiln` prints it: message, and a hint naming flags."""
    return exc.render(as_flag)
