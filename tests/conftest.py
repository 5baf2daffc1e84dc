"""Shared pytest configuration: the real services (see ``tests/fixtures/sessions.py``)."""

from __future__ import annotations

import os

from tests.fixtures.sessions import anvil, pg_url, postgres_server, ray_cluster  # noqa: F401

# Local Ray clusters in tests run without token auth (FIELD-NOTES: Ray 2.60 auth).
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# Numba caches compiled kernels across processes and test runs.
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "raymarket-numba"))
