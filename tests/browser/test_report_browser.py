"""The report and the human-evaluation page in headless Chromium, on a real pipeline run: sections
render with the manifest's numbers, ratings submitted through the page are saved and aggregated,
and hostile document text renders as text and runs nothing."""

import json
import threading

import pytest

from corpusforge.report.build import RunReport, build_report, gather_extra
from corpusforge.report.serve import make_server
from tests.browser.report_run import XSS, make_run, make_xss_run
from tests.util import manifest


@pytest.fixture(scope="module")
def run_dir(shared_data, tmp_path_factory):
    return make_run(shared_data, tmp_path_factory.mktemp("browser"))


def _num(s: str) -> int:
    return int(s.replace(",", "").strip())


class Server:
    def __init__(self, run_dir, eval_samples=6):
        r = RunReport(str(run_dir), eval_samples=eval_samples)
        self.report = r
        self.srv = make_server(r, gather_extra([str(run_dir)], [r.found]), "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_report_sections_show_the_manifest_numbers(page, run_dir, tmp_path, artifacts):
    out = tmp_path / "report.html"
    build_report([str(run_dir)], str(out))
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(out.as_uri())
    m = manifest(run_dir)
    for s in m["stages"]:
        row = page.locator(f'#run-0-funnel tr[data-stage="{s["name"]}"]')
        assert _num(row.locator('td[data-k="in"]').inner_text()) == s["in"]
        assert _num(row.locator('td[data-k="kept"]').inner_text()) == s["kept"]
        for reason, n in s["dropped"].items():
            assert _num(page.locator(f'#run-0-reasons tr[data-reason="{reason}"] td[data-k="documents"]').inner_text()) == n
    assert sum(_num(t) for t in page.locator('#run-0-sources td[data-k="kept"]').all_inner_texts()) == m["totals"]["kept"]
    for sec in ("funnel", "sources", "reasons", "clean", "scores", "dedup", "human", "manifest"):
        assert page.locator(f"#run-0-{sec}").is_visible(), sec
    assert page.locator("#run-0-scores svg").count() == len(RunReport(str(run_dir), eval_samples=1).data["scores"])
    assert page.locator("#run-0-scores line.threshold").count() >= 9
    # browsable samples: closed until opened, then the highlighted text shows
    det = page.locator('details.reason-samples[data-reason="sensitive_words:sensitive_words"]')
    assert not det.locator("mark.hit-sensitive").first.is_visible()
    det.locator("summary").click()
    assert det.locator("mark.hit-sensitive").count() == 4 and det.locator("mark.hit-sensitive").first.is_visible()
    cl = page.locator("details.cluster").first
    cl.locator("summary").click()
    assert cl.locator("ol li").count() >= 1
    for k, sha in m["rules"].items():
        assert page.locator(f'#run-0-manifest td[data-k="sha256"]:text-is("{sha}")').count() == 1, k
    assert page.evaluate("document.scripts.length") == 0 and errors == []
    page.screenshot(path=str(artifacts / "report_full.png"), full_page=True)
    for sec in ("funnel", "reasons", "scores", "dedup"):
        page.locator(f"#run-0-{sec}").screenshot(path=str(artifacts / f"report_{sec}.png"))


def test_ratings_submitted_in_the_page_are_aggregated(page, run_dir, artifacts):
    s = Server(run_dir)
    try:
        page.goto(s.url + "/human-eval")
        docs = page.locator(".eval-doc")
        assert docs.count() == 6
        plan = [(4, []), (2, []), (5, ["ads", "repeated"])]  # the last two are low quality
        for i, (fluency, flags) in enumerate(plan):
            d = page.locator(".eval-doc").nth(i)
            d.locator('input[name="reviewer"]').fill("ann")
            d.locator(f'input[name="fluency"][value="{fluency}"]').check()
            for f in flags:
                d.locator(f'input[name="flags"][value="{f}"]').check()
            with page.expect_navigation():
                d.locator('button[type="submit"]').click()
            assert page.locator("p.saved").is_visible(), page.content()[:500]
        assert page.locator(".progress").get_attribute("data-ratings") == "3"
        page.screenshot(path=str(artifacts / "human_eval.png"))
        ratings = json.loads((run_dir / "human_eval.json").read_text(encoding="utf-8"))["ratings"]
        ids = [d["id"] for d in s.report.data["eval_samples"]]
        assert ratings[ids[2]] == {"ann": {"fluency": 5, "flags": ["ads", "repeated"], "rule": "kept"}} and len(ratings) == 3
        page.goto(s.url + "/")
        agg = page.locator("#run-0-human table.human-agg")
        assert _num(agg.locator('td[data-k="ratings"]').inner_text()) == 3
        assert _num(agg.locator('td[data-k="low quality"]').inner_text()) == 2
        assert float(agg.locator('td[data-k="low-quality ratio"]').get_attribute("data-v")) == pytest.approx(2 / 3)
        lo = float(agg.locator('td[data-k="95% CI (Wilson) low"]').get_attribute("data-v"))
        assert 0.2 < lo < 0.21  # Wilson 95 % for 2 of 3: [0.2077, 0.9385]
        page.locator("#run-0-human").screenshot(path=str(artifacts / "human_aggregate.png"))
    finally:
        s.close()
        (run_dir / "human_eval.json").unlink(missing_ok=True)


def test_xss_payload_renders_as_text_and_runs_nothing(page, shared_data, tmp_path, artifacts):
    x = make_xss_run(shared_data, tmp_path)
    out = tmp_path / "x.html"
    build_report([str(x)], str(out), samples=10)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(out.as_uri())
    short = page.locator('details.reason-samples[data-reason="pangu_rules:too_short"]')
    short.locator("summary").click()
    assert 'window.__xss = 1; alert("xss")' in short.inner_text() and "<script>" in short.inner_text()
    s = Server(x, eval_samples=500)
    try:
        page.goto(s.url + "/human-eval")
        doc = page.locator('.eval-doc[data-id]', has_text="onerror=")
        assert doc.count() == 1 and XSS in doc.locator(".doc").inner_text()
        page.screenshot(path=str(artifacts / "xss_human_eval.png"))
        for url in (out.as_uri(), s.url + "/human-eval", s.url + "/"):
            page.goto(url)
            page.wait_for_timeout(200)
            assert page.evaluate("typeof window.__xss") == "undefined"
            assert page.evaluate("document.scripts.length") == 0 and page.locator("img").count() == 0
        assert dialogs == []
    finally:
        s.close()
