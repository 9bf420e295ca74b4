"""Fixtures for the packaging tests: the project's wheel installed alone in a fresh venv."""

from __future__ import annotations

import pytest

from .freshvenv import FreshVenv, build_wheel, make_fresh_venv


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    """The wheel of this checkout installed alone (core dependencies only) in a new venv."""
    work = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(work / "dist", work / "source")
    return make_fresh_venv(work / "venv", wheel, work / "source")
