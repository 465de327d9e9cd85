"""Fixtures for the hostile-image suite: the pod fixtures (executor image, podman) reused."""

from __future__ import annotations

from tests.pod.conftest import debug_executor_image, executor_image, podman

__all__ = ["debug_executor_image", "executor_image", "podman"]
