"""The examiners' workbench in a real browser (headless Chromium) against a real ``locard serve``.

One server on a small store (bureau A's FVC2002 DB1_B fingers and LFW faces, enrolled for A
only), keys made with ``locard keys create``: two examiners of A, an auditor of A, a bureau
key of A and one of B.  Each user signs in in a browser context of their own.

``LOCARD_WORKBENCH_SCREENSHOTS=docs`` also writes the search, compare and conclude screens
(1280 x 800 PNG) there; ``LOCARD_WORKBENCH_TIMING=20`` times that many searches of one probe in
the page and straight through the API (printed with ``-s``; benchmarks/README.md, Workbench).
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.local import start_server

from .browser import chromium, needs_chromium, signed_in

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FVC = SHARED / "fingerprint" / "fvc2002_db1_b" / "images"
LFW = SHARED / "face" / "lfw_original_10ids" / "images"
FINGERS = (101, 102, 103, 104, 105)
PEOPLE = ("Colin_Powell", "Tony_Blair")
SHOTS = os.environ.get("LOCARD_WORKBENCH_SCREENSHOTS")

pytestmark = [needs_chromium, pytest.mark.skipif(
    not (FVC.is_dir() and LFW.is_dir()), reason=f"real prints and faces absent: {FVC}, {LFW} (../shared/data)")]


@dataclass
class Bench:
    url: str
    keys: dict
    ids: dict
    browser: object
    log: Path

    def page(self, who: str):
        return signed_in(self.browser, self.url, self.keys[who])


def _key(store: Path, role: str, bureau: str) -> str:
    return subprocess.run([sys.executable, "-m", "locard", "keys", "create", "--role", role, "--bureau", bureau,
                           "--store", str(store)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=True).stdout.strip()


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    store = tmp_path_factory.mktemp("workbench-store")
    keys = {who: _key(store, role, bureau) for who, role, bureau in (
        ("examiner1", "examiner", "A"), ("examiner2", "examiner", "A"), ("auditor", "auditor", "A"),
        ("bureauA", "bureau", "A"), ("bureauB", "bureau", "B"))}
    server = start_server(store, "--max-concurrent-per-key", "4", "--manifest-root", str(FVC),
                          log_path=store / "server.log", timeout=90)
    try:
        ids = {}
        with httpx.Client(base_url=server.base_url, timeout=120, headers={"X-API-Key": keys["bureauA"]}) as c:
            for name, part, data in ([(f, "fingerprint", (FVC / f"{f}_1.tif").read_bytes()) for f in FINGERS]
                                     + [(p, "face", (LFW / p / f"{p}_0001.jpg").read_bytes()) for p in PEOPLE]):
                r = c.post("/v1/subjects", files=[(part, (f"{name}.img", data))],
                           data={"shared_with": "none", "reference": f"ref-{name}"})
                assert r.status_code == 201, r.text
                ids[name] = r.json()["subject"]["id"]
        with chromium() as browser:
            yield Bench(server.base_url, keys, ids, browser, store / "server.log")
    finally:
        server.stop()


def _shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"workbench-{name}.png"))


def _search(page, *files: Path, case: str = "") -> list[str]:
    """Search in the page; the candidates' subject ids in rank order."""
    page.click("#nav-search")
    while page.locator(".probe-list button").count():  # the last search's probes
        page.locator(".probe-list button").first.click()
    page.set_input_files("#probe-files", [str(f) for f in files])
    if case:
        page.fill("#case", case)
    page.click("#run-search")
    page.wait_for_selector("#search-id", timeout=120_000)
    return page.locator("#candidates tbody tr").evaluate_all("rows => rows.map(r => r.dataset.subject)")


def _nav(page) -> list[str]:
    return page.locator("#nav a").all_inner_texts()


def test_examiner_identifies_and_another_examiner_verifies_blind(bench):
    mate = bench.ids[101]
    ex1 = bench.page("examiner1")
    assert _nav(ex1) == ["Search", "Cases", "Subjects"]  # no batch jobs, no audit log for an examiner
    ranked = _search(ex1, FVC / "101_5.tif", case="CASE-13")
    assert ranked[0] == mate
    first = ex1.locator("#candidates tbody tr").first
    assert "HIT" in first.inner_text()
    assert "false hit in about 1 search in" in ex1.inner_text(".summary")
    _shot(ex1, "search")

    # the comparison, by keyboard alone: Enter on the candidate, then the documented keys
    first.focus()
    ex1.keyboard.press("Enter")
    ex1.wait_for_selector("#cmp-score:not(:empty)", timeout=120_000)
    assert "paired minutiae" in ex1.inner_text("#cmp-score")
    ex1.keyboard.press("l")
    assert ex1.get_attribute("#t-lines", "aria-pressed") == "true"
    zoom = ex1.inner_text("#zoom-label")
    ex1.keyboard.press("+")
    assert ex1.inner_text("#zoom-label") != zoom
    ex1.keyboard.press("n")
    ex1.wait_for_url(f"**/#compare/*/{ranked[1]}")
    ex1.wait_for_selector("#cand-pos:has-text('candidate 2 of')")  # the next view is there
    ex1.keyboard.press("p")
    ex1.wait_for_url(f"**/#compare/*/{mate}")
    ex1.wait_for_selector("#cmp-score:not(:empty)", timeout=120_000)
    assert ex1.get_attribute("#t-lines", "aria-pressed") == "true"  # the toggles stay from candidate to candidate
    _shot(ex1, "compare")

    ex1.check("#conclusion input[value=identification]")
    ex1.fill("#conclusion-note", "first examiner's note: ridge flow and minutiae agree")
    ex1.click("#record-conclusion")
    assert ex1.inner_text("#conclusion-status") == "pending verification"

    # the verifier finds it under Cases and sees nothing of the first conclusion before recording theirs
    ex2 = bench.page("examiner2")
    ex2.click("#nav-cases")
    row = ex2.locator("#cases tbody tr", has_text=mate)
    assert "to verify" in row.inner_text() and "hidden until you conclude" in row.inner_text()
    row.click()
    ex2.set_input_files("#probe-again", str(FVC / "101_5.tif"))  # the case's probe; this tab never had it
    ex2.wait_for_selector("#cmp-score:not(:empty)", timeout=120_000)
    ex2.wait_for_selector("#record-conclusion")
    before = ex2.inner_text("body")
    assert "first examiner's note" not in before and "identification ·" not in before
    assert "Blind verification" in ex2.inner_text("#conclusion")
    ex2.check("#conclusion input[value=identification]")
    ex2.click("#record-conclusion")
    assert ex2.inner_text("#conclusion-status") == "verified"
    assert "first examiner's note" in ex2.inner_text("#conclusion")
    _shot(ex2, "conclude")

    # the auditor: the chain verifies and both conclusions are in the log
    aud = bench.page("auditor")
    assert "Audit log" in _nav(aud) and "Search" not in _nav(aud)
    aud.wait_for_selector("#audit table")
    assert "Chain intact" in aud.inner_text("#audit-check")
    aud.select_option("#filter-action", "conclusion")
    rows = aud.locator("#audit tbody tr[data-action=conclusion]")
    text = rows.all_inner_texts()
    assert len(text) == 2 and all(mate in t for t in text)
    assert any(bench.keys["examiner1"].split("_")[1] in t for t in text)
    assert any(bench.keys["examiner2"].split("_")[1] in t for t in text)

    # no key in any URL the pages asked for, nor in the server's output
    for page in (ex1, ex2, aud):
        assert not [u for u in page.seen_urls if any(k in u for k in bench.keys.values())]
    assert not any(k in bench.log.read_text() for k in bench.keys.values())


def test_a_wrong_key_is_refused_and_signing_out_forgets_the_key(bench):
    context = bench.browser.new_context()
    page = context.new_page()
    page.goto(bench.url + "/")
    page.fill("#api-key", "lk_000000000000_not-a-real-secret")
    page.click("form.signin button[type=submit]")
    assert "valid API key" in page.inner_text(".signin .notice.error")
    assert page.inner_text("#who") == "" and page.locator("#nav a").count() == 0
    page.fill("#api-key", bench.keys["auditor"])
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("#nav-audit")
    assert page.evaluate("() => sessionStorage.length") == 1  # the key, in this tab only
    page.click("#signout")
    page.wait_for_selector("#api-key")
    assert page.evaluate("() => sessionStorage.length") == 0
    context.close()


def test_face_search_and_aligned_crops(bench):
    ex = bench.page("examiner1")
    ranked = _search(ex, LFW / "Tony_Blair" / "Tony_Blair_0002.jpg")
    assert ranked[0] == bench.ids["Tony_Blair"]
    ex.click("#candidates tr.link >> nth=0")
    ex.wait_for_selector("#cmp-score:not(:empty)", timeout=120_000)
    assert ex.inner_text("#cmp-score").startswith("face score")


def _zip(tmp_path: Path, names: list[str]) -> Path:
    path = tmp_path / "probes.zip"
    with zipfile.ZipFile(path, "w") as z:
        for n in names:
            z.write(FVC / n, n)
    return path


def _job_download(page, fmt: str, archive: Path | None = None, manifest: str = "") -> str:
    """Submit a batch job from the page (a ZIP, or a manifest), wait for it, download its results."""
    page.click("#nav-jobs")
    if archive:
        page.set_input_files("#job-archive", str(archive))
    page.fill("#job-manifest", manifest)
    page.click("#submit-job")
    job = page.inner_text(".side .notice").split()[1].rstrip(":")
    row = f"#jobs tr[data-job={job}][data-state=done]"
    page.wait_for_selector(row, timeout=120_000)
    with page.expect_download() as dl:
        page.click(f"{row} button:has-text('{fmt.upper()}')")
    return Path(dl.value.path()).read_text()


def test_bureau_batch_zip_and_csv(bench, tmp_path):
    page = bench.page("bureauA")
    assert _nav(page) == ["Search", "Batch jobs", "Subjects"]
    assert _search(page, FVC / "103_4.tif")[0] == bench.ids[103]
    assert page.locator("#candidates tr.link").count() == 0  # a bureau key may not open the comparison
    text = _job_download(page, "csv", archive=_zip(tmp_path, ["102_4.tif", "104_6.tif"]))
    rank1 = {r["label"]: r["subject"] for r in csv.DictReader(io.StringIO(text)) if r["rank"] == "1"}
    assert rank1 == {"102_4.tif": bench.ids[102], "104_6.tif": bench.ids[104]}
    # a manifest of images under the server's --manifest-root, results as JSON
    items = json.loads(_job_download(page, "json", manifest='{"probes": [{"path": "105_4.tif"}], "top": 3}'))["items"]
    assert [i["candidates"][0]["subject"] for i in items] == [bench.ids[105]]
    # the bureau's own subjects and their rule
    page.click("#nav-subjects")
    page.wait_for_selector("#subjects table")
    row = page.locator(f"#subjects tr[data-subject={bench.ids[101]}]")
    assert "owner only" in row.inner_text()


def test_another_bureau_sees_none_of_its_subjects(bench, tmp_path):
    page = bench.page("bureauB")
    a_ids = set(bench.ids.values())
    shown = []
    page.click("#nav-subjects")
    page.wait_for_selector("#subjects p")
    shown.append(page.inner_text("body"))
    ranked = _search(page, FVC / "101_5.tif", LFW / "Colin_Powell" / "Colin_Powell_0002.jpg")
    assert not a_ids & set(ranked)
    shown.append(page.inner_text("body"))
    shown.append(_job_download(page, "json", archive=_zip(tmp_path, ["101_5.tif"])))
    shown.append(page.inner_text("body"))
    assert not [i for i in a_ids for text in shown if i in text]


@pytest.mark.skipif(not os.environ.get("LOCARD_WORKBENCH_TIMING"), reason="timing run: LOCARD_WORKBENCH_TIMING=N")
def test_page_search_time_beside_the_api(bench):
    """Prints the median time of N searches of one probe in the page (click to list drawn) and
    through the API (request to parsed answer), interleaved; and, within each page search, the page
    time less its own /v1/search request (Resource Timing): what the page itself adds, free of the
    search's own variation.  No assertion on times (they are machine load)."""
    n = int(os.environ["LOCARD_WORKBENCH_TIMING"])
    probe = FVC / "103_5.tif"
    page_ms, api_ms, own_ms = [], [], []
    ex = bench.page("examiner1")
    with httpx.Client(base_url=bench.url, timeout=120, headers={"X-API-Key": bench.keys["examiner1"]}) as c:
        for _ in range(n):  # interleaved, so that load on the machine falls on both alike
            t0 = time.perf_counter()
            r = c.post("/v1/search", files=[("fingerprint", (probe.name, probe.read_bytes()))])
            r.json()
            api_ms.append(1000 * (time.perf_counter() - t0))
            _search(ex, probe)
            page_ms.append(float(ex.get_attribute(".summary", "data-search-ms")))
            own_ms.append(page_ms[-1] - float(ex.get_attribute(".summary", "data-request-ms")))
    diff = [p - a for p, a in zip(page_ms, api_ms)]
    print(f"\nworkbench search, {n} runs: page median {statistics.median(page_ms):.0f} ms, "
          f"API median {statistics.median(api_ms):.0f} ms, page - API median {statistics.median(diff):.0f} ms "
          f"(min {min(diff):.0f}, max {max(diff):.0f}); page less its own request: median "
          f"{statistics.median(own_ms):.0f} ms, max {max(own_ms):.0f} ms")
