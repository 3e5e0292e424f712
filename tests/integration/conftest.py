"""Fixtures of the editor-UI tests (``admin_support``), for every integration test module."""

from tests.integration.admin_support import anonymous, dispatched, editor

__all__ = ["anonymous", "dispatched", "editor"]
