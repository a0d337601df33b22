"""Schemathesis over the service's OpenAPI schema: generated requests never get a 5xx.

Each operation is called with a key of a role it accepts (so the generated data reaches
the route, not just the 403), on a small store with one enrolled subject.  Skipped when
schemathesis is not installed (``pip install -e '.[api-check]'``).  Examples per
operation: ``LOCARD_SCHEMATHESIS_EXAMPLES`` (default 12, so it stays within CI time).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis not installed (pip install -e '.[api-check]')")
from hypothesis import HealthCheck, settings  # noqa: E402

from api.app import create_app  # noqa: E402
from api.database import ApiDatabase  # noqa: E402
from api.keys import ROLES, create_key  # noqa: E402
from api.service import ServiceConfig  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "fingerprints" / "images"
EXAMPLES = int(os.environ.get("LOCARD_SCHEMATHESIS_EXAMPLES", "12"))


def _app():
    import tempfile

    store = Path(tempfile.mkdtemp(prefix="locard-schemathesis-"))
    db = ApiDatabase(store)
    keys = {role: create_key(db, role, "FR")[0] for role in ROLES}
    app = create_app(ServiceConfig(store=store))
    app.state.test_keys = keys
    return app


APP = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def _role(method: str, path: str) -> str:
    if path.startswith("/v1/keys"):
        return "admin"
    if path.startswith("/v1/audit"):
        return "auditor"
    if path.startswith("/v1/jobs") or (path.startswith("/v1/subjects") and method in ("POST", "PUT", "DELETE")):
        return "bureau"
    return "examiner"


@pytest.fixture(scope="module", autouse=True)
def _started():
    from fastapi.testclient import TestClient

    with TestClient(APP) as c:
        if (SAMPLES / "0001_1.png").is_file():
            c.post("/v1/subjects", headers={"X-API-Key": APP.state.test_keys["bureau"]},
                   files=[("fingerprint", ("a.png", (SAMPLES / "0001_1.png").read_bytes()))])
        yield


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    key = APP.state.test_keys[_role(case.method.upper(), case.path)]
    response = case.call(headers={"X-API-Key": key})
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:500]}"
