"""Fixtures for isolation tests: the busybox base image in the test registry (as in e2e)."""

from __future__ import annotations

from tests.e2e.conftest import base_image, busybox_layout

__all__ = ["base_image", "busybox_layout"]
