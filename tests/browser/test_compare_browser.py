"""`report serve RUN_A RUN_B --compare` in headless Chromium, on real runs that differ by one threshold:
the comparison page shows the numbers compare() and the manifests give, a reviewer reaches the
flipped documents and rates them by links and forms only, the two runs' ratings appear side by side,
and hostile document text in a flipped document renders as text and runs nothing."""

import json
import threading

import pytest

from corpusforge.report.build import RunReport, build_report, compare_runs, gather_extra
from corpusforge.report.serve import make_server
from tests.browser.report_run import STAGES, XSS, make_run
from tests.util import manifest

STRICT = [STAGES[0], {"use": "pangu_rules", "with": {"overrides": {"min_chars": 400}}}, *STAGES[2:]]
XSS_STAGES = [{"use": "pangu_rules"}, {"use": "sensitive_words"}, {"use": "dedup_exact"}]


class PairServer:
    def __init__(self, a, b, samples=5, eval_samples=6):
        ra, rb = RunReport(str(a), eval_samples=eval_samples), RunReport(str(b), eval_samples=eval_samples)
        extra = gather_extra([str(a), str(b)], [ra.found, rb.found])
        self.cmp = extra["compare"] = compare_runs(str(a), str(b), samples, eval_samples, None)
        self.srv = make_server(ra, extra, "127.0.0.1", 0, other=rb)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture(scope="module")
def pair(shared_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("cmpb")
    return make_run(shared_data, d, "loose"), make_run(shared_data, d, "strict", STRICT)


def _num(s: str) -> int:
    return int(s.replace(",", "").replace("+", "").strip())


def test_comparison_page_shows_the_flips_and_the_manifests_difference(page, pair, artifacts):
    a, b = pair
    s = PairServer(a, b)
    try:
        page.goto(s.url + "/")
        page.locator("nav a", has_text="comparison").first.click()
        assert page.url.endswith("/compare")
        for t in s.cmp["transitions"]:
            row = page.locator(f'table.compare-transitions tr[data-from="{t["a"]}"][data-to="{t["b"]}"]')
            assert _num(row.locator('td[data-k="documents"]').inner_text()) == t["n"]
        assert sum(t["n"] for t in s.cmp["transitions"]) == _num(page.locator('.compare-summary [data-k="flipped"]').inner_text())
        ma, mb = manifest(a), manifest(b)
        for sa, sb in zip(ma["stages"], mb["stages"]):
            row = page.locator(f'table.compare-stages tr[data-stage="{sa["name"]}"]')
            assert _num(row.locator('td[data-k="Δ kept"]').inner_text()) == sb["kept"] - sa["kept"]
        det = page.locator('details.flip[data-from="kept"][data-to="pangu_rules:too_short"]')
        assert not det.locator(".flip-doc").first.is_visible()
        det.locator("summary").click()
        first = det.locator(".flip-doc").first
        assert first.is_visible() and any("\u4e00" <= c <= "\u9fff" for c in first.inner_text())  # CJK text shown
        assert "pangu_rules:too_short" in first.inner_text()
        assert page.locator("#compare svg").count() >= 2 and page.evaluate("document.scripts.length") == 0
        page.screenshot(path=str(artifacts / "compare.png"), full_page=True)
    finally:
        s.close()


def test_reviewers_rate_what_the_change_flipped_and_see_both_runs_side_by_side(page, pair, artifacts):
    a, b = pair
    s = PairServer(a, b)
    try:
        page.goto(s.url + "/compare")
        page.locator("a.eval-link[href='/human-eval?run=a&sample=flipped']").click()
        assert page.locator("p.rule").get_attribute("data-rule") == "flipped"
        flipped = {x["id"] for x in s.cmp["eval_a"]}
        shown = page.locator(".eval-doc").evaluate_all("els => els.map(e => e.dataset.id)")
        assert shown and set(shown) == flipped  # exactly the documents A kept and B dropped (within the sample size)
        d = page.locator(".eval-doc").first
        d.locator('input[name="reviewer"]').fill("ann")
        d.locator('input[name="fluency"][value="1"]').check()
        d.locator('input[name="flags"][value="garbled"]').check()
        with page.expect_navigation():
            d.locator('button[type="submit"]').click()
        assert page.locator("p.saved").is_visible() and page.locator("p.rule").get_attribute("data-rule") == "flipped"
        page.goto(s.url + "/human-eval?run=b&sample=kept")
        d = page.locator(".eval-doc").first
        d.locator('input[name="reviewer"]').fill("bob")
        d.locator('input[name="fluency"][value="5"]').check()
        with page.expect_navigation():
            d.locator('button[type="submit"]').click()
        page.locator("nav a", has_text="comparison").first.click()
        row = page.locator('table.compare-human tr[data-rule="flipped"][data-run="a"]')
        assert _num(row.locator('td[data-k="ratings"]').inner_text()) == 1
        assert float(row.locator('td[data-k="low-quality share"]').get_attribute("data-v")) == 1.0
        row = page.locator('table.compare-human tr[data-rule="kept"][data-run="b"]')
        assert _num(row.locator('td[data-k="ratings"]').inner_text()) == 1
        assert float(row.locator('td[data-k="mean fluency"]').get_attribute("data-v")) == 5.0
        page.locator("#compare-human").screenshot(path=str(artifacts / "compare_human.png"))
        ra = json.loads((a / "human_eval.json").read_text(encoding="utf-8"))["ratings"]
        assert [(doc, r["ann"]["rule"]) for doc, r in ra.items()] == [(shown[0], "flipped")]
        rb = json.loads((b / "human_eval.json").read_text(encoding="utf-8"))["ratings"]
        assert [r["bob"]["rule"] for r in rb.values()] == ["kept"]
        assert page.request.get(s.url + "/human-eval?run=c&sample=kept").status == 404
    finally:
        s.close()
        for r in pair:
            (r / "human_eval.json").unlink(missing_ok=True)


def test_hostile_text_in_a_flipped_document_renders_as_text(page, shared_data, tmp_path, artifacts):
    a = make_run(shared_data, tmp_path, "xa", XSS_STAGES, ("luxun", "hostile"))
    b = make_run(shared_data, tmp_path, "xb", [{"use": "pangu_rules", "with": {"overrides": {"min_chars": 2000}}}, *XSS_STAGES[1:]],
                 ("luxun", "hostile"))
    out = tmp_path / "cmp.html"
    build_report([str(a), str(b)], str(out), samples=1000, compare=True)
    s = PairServer(a, b, samples=1000, eval_samples=1000)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        for url in (out.as_uri() + "#compare", s.url + "/compare"):
            page.goto(url)
            det = page.locator('details.flip[data-from="kept"][data-to="pangu_rules:too_short"]')
            det.locator("summary").click()
            doc = det.locator(".flip-doc", has_text="onerror=")  # the long hostile document (ids are computed, not the input's)
            assert doc.count() == 1 and XSS in doc.locator(".doc.before").inner_text()
            page.wait_for_timeout(200)
            assert page.evaluate("typeof window.__xss") == "undefined"
            assert page.evaluate("document.scripts.length") == 0 and page.locator("img").count() == 0
        page.goto(s.url + "/human-eval?run=a&sample=flipped")
        assert XSS in page.locator(".eval-doc", has_text="onerror=").locator(".doc").inner_text()
        assert page.evaluate("typeof window.__xss") == "undefined" and dialogs == []
        page.screenshot(path=str(artifacts / "compare_xss.png"))
    finally:
        s.close()
