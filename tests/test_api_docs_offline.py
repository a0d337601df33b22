"""The service on a network without internet: /docs and /redoc load nothing from another host;
and nothing secret leaks into logs or URLs (no key, no image content in the server's log lines).

The log test runs the real ``locard serve`` server (uvicorn, access log on) on a loopback
socket, and captures every log record while keyed requests upload images.
"""

from __future__ import annotations

import base64
import logging
import re
import socket
import threading
import time
from html.parser import HTMLParser

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import make_server
from api.database import ApiDatabase
from api.keys import create_key, redact_keys
from api.service import ServiceConfig
from .sample_prints import fp, needs_samples


class _Assets(HTMLParser):
    """URLs a page makes the browser fetch: script src, link href, img src."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in {"script": ("src",), "link": ("href",), "img": ("src",)}.get(tag, ()):
            if a.get(name):
                self.urls.append(a[name])


def _assets(html: str) -> list[str]:
    p = _Assets()
    p.feed(html)
    return p.urls


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with TestClient(create_app(ServiceConfig(store=tmp_path_factory.mktemp("docs")))) as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_their_assets_from_this_server(client, page):
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    urls = _assets(r.text)
    assert any(u.endswith(".js") for u in urls), urls
    for u in urls:
        assert not re.match(r"^(https?:)?//", u), f"{page} loads {u} from another host"
        asset = client.get(u)
        assert asset.status_code == 200, u
        if u.endswith(".js"):
            assert len(asset.content) > 500_000  # the UI bundle itself, not a stub
    # nothing else in the page points elsewhere (fonts, validator badge, CDN fallbacks)
    assert not re.search(r"https?://(?!locard\.invalid)", r.text), re.findall(r"https?://[^\s\"']+", r.text)
    assert client.get("/openapi.json").status_code == 200


def test_swagger_ui_does_not_call_the_online_validator(client):
    assert '"validatorUrl": null' in client.get("/docs").text


def test_no_route_takes_a_key_in_the_url(client):
    schema = client.get("/openapi.json").json()
    for scheme in schema["components"]["securitySchemes"].values():
        assert scheme["type"] == "apiKey" and scheme["in"] == "header"
    for path, ops in schema["paths"].items():
        for op in ops.values():
            for p in op.get("parameters", []):  # header parameters are the security scheme's
                assert p["in"] in ("query", "path"), (path, p)
                if p["name"] != "key_id":  # a key's public id (key management), never its secret
                    assert not re.search(r"key|token|secret|auth", p["name"], re.I), (path, p["name"])


def test_redact_keys_keeps_the_id_only():
    key = "lk_0123456789ab_" + "s" * 43
    assert redact_keys(f"GET /v1/subjects?x={key}&y=1") == "GET /v1/subjects?x=lk_0123456789ab_[redacted]&y=1"


class _Capture(logging.Handler):
    """Every log record of the server's side of this process (the test's own HTTP client, httpx,
    logs the URLs it requests: that is the client's log, not the server's)."""

    CLIENT = ("httpx", "httpcore")

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        if record.name.split(".")[0] not in self.CLIENT:
            self.lines.append(logging.Formatter("%(name)s %(message)s").format(record))


@needs_samples
def test_log_lines_hold_no_key_and_no_image_content(tmp_path):
    store = tmp_path / "s"
    db = ApiDatabase(store)
    bureau, _ = create_key(db, "bureau", "FR")
    examiner, _ = create_key(db, "examiner", "FR")
    server = make_server(create_app(ServiceConfig(store=store)), "127.0.0.1", 0, "info")
    capture = _Capture()
    loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.error", "uvicorn.access", "locard")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(capture)
        lg.setLevel(logging.DEBUG)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    images = [fp("0001_1"), fp("0001_2"), b"\x89PNG\r\n\x1a\n not really an image"]
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as c:
            hb, he = {"X-API-Key": bureau}, {"X-API-Key": examiner}
            r = c.post("/v1/subjects", headers=hb, data={"shared_with": "all"},
                       files=[("fingerprint", ("a.png", images[0], "image/png"))])
            assert r.status_code == 201, r.text
            subject = r.json()["subject"]["id"]
            assert c.post("/v1/search", headers=he, data={"case": "log-test"},
                          files=[("fingerprint", ("p.png", images[1], "image/png"))]).status_code == 200
            assert c.post("/v1/compare", headers=he, data={"subject": subject},
                          files=[("fingerprint", ("p.png", images[1], "image/png"))]).status_code == 200
            assert c.post("/v1/search", headers=he,
                          files=[("fingerprint", ("x.png", images[2], "image/png"))]).status_code in (415, 422)
            assert c.get("/v1/subjects", headers={"X-API-Key": examiner[:-4] + "AAAA"}).status_code == 401
            # a client that puts the key in the URL is refused, and the log line drops its secret
            assert c.get(f"/v1/subjects?api_key={examiner}").status_code == 401
            assert c.get("/v1/whoami", headers=he).status_code == 200
    finally:
        server.should_exit = True
        thread.join(60)
        for lg, level in zip(loggers, levels):
            lg.removeHandler(capture)
            lg.setLevel(level)
    text = "\n".join(capture.lines)
    assert re.search(r'"POST /v1/search HTTP/1\.1" 200', text), text  # the access log was captured
    assert re.search(r'"POST /v1/compare HTTP/1\.1" 200', text)
    assert "[redacted]" in text  # the key sent in a URL
    for key in (bureau, examiner):
        secret = key.split("_", 2)[2]
        assert secret not in text and secret[:16] not in text
    for data in images[:2]:
        for chunk in (data[100:124], data[-40:-16]):
            assert len(chunk) == 24 and chunk.decode("latin-1") not in text and chunk.hex() not in text
        assert base64.b64encode(data[:60]).decode()[:40] not in text
    assert "not really an image" not in text
