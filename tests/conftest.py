"""Test-wide settings.

The audit log keeps its key and anchor outside the store, by default under
``$XDG_CONFIG_HOME/locard`` (``~/.config/locard``): the tests point that at a
temporary folder, so they write nothing into the home folder of whoever runs them.
Servers the tests start inherit the variable.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_config_home(tmp_path_factory):
    previous = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config-home"))
    yield
    if previous is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = previous
