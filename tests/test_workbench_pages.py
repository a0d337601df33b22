"""The workbench's files as the service serves them (no browser; tests/test_workbench_e2e.py drives one)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.service import ServiceConfig
from api.web import STATIC

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return TestClient(create_app(ServiceConfig(store=tmp_path_factory.mktemp("pages-store"))))


def test_root_redirects_to_the_workbench(client):
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/workbench/"


def test_every_file_is_served_whole_without_a_key(client):
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"index.html", "workbench.css", "main.js", "compare.js"}
    for p in files:
        r = client.get("/workbench/" + p.relative_to(STATIC).as_posix())
        assert r.status_code == 200, p
        assert r.content == p.read_bytes(), f"{p} not served whole"
        assert "default-src 'self'" in r.headers["content-security-policy"]
        if p.suffix == ".js":
            assert r.headers["content-type"].startswith("text/javascript")


def test_pages_load_nothing_from_elsewhere_and_import_only_what_exists():
    for p in STATIC.rglob("*"):
        if p.suffix in (".html", ".css", ".js"):
            text = p.read_text()
            assert not re.search(r"(src|href)=\"(https?:)?//|url\((https?:)?//|import .* from \"https?:", text), p
            for module in re.findall(r'from "\./([\w.]+)"', text):
                assert (p.parent / module).is_file(), f"{p.name} imports missing {module}"


def test_the_wheel_ships_every_page_file():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["api.web"]
    shipped = {f for g in globs for f in STATIC.parent.glob(g)}
    assert shipped == {p for p in STATIC.rglob("*") if p.is_file()}
