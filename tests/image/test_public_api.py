"""The names docs/internals.md promises exist, and kiln.image imports only kiln.errors."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import kiln.image
from kiln.image import mediatypes

PACKAGE_DIR = Path(kiln.image.__file__).parent


def test_all_names_are_exported() -> None:
    for name in kiln.image.__all__:
        assert hasattr(kiln.image, name), name


def test_internals_contract_names() -> None:
    for name in (
        "DOCKER_MANIFEST",
        "DOCKER_MANIFEST_LIST",
        "DOCKER_CONFIG",
        "DOCKER_LAYER_GZIP",
        "OCI_MANIFEST",
        "OCI_INDEX",
        "OCI_CONFIG",
        "OCI_LAYER_GZIP",
        "OCI_LAYER",
        "OCI_LAYER_ZSTD",
    ):
        assert isinstance(getattr(mediatypes, name), str)
    layout_params = inspect.signature(kiln.image.write_oci_layout).parameters
    assert list(layout_params)[:3] == ["path", "image", "tags"]
    archive_params = inspect.signature(kiln.image.write_docker_archive).parameters
    assert list(archive_params) == ["path", "image", "repo_tags"]


def test_image_imports_only_errors_from_kiln() -> None:
    for source in PACKAGE_DIR.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                if module.startswith("kiln"):
                    assert module == "kiln.errors" or module.startswith("kiln.image"), (
                        f"{source.name} imports {module}"
                    )
