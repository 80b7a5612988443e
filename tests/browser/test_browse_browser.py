"""The document browser of `report serve` in headless Chromium, on a real pipeline run (Lu Xun,
Common Crawl, hostile XSS documents and a file with unreadable lines): reached from the report's
nav by links, filtered through the GET form, paged by "next" links, documents opened by links; CJK
text shows, hostile text renders as text and runs nothing, the quarantine ledger line is shown."""

import json
import re

import pytest
import yaml

from tests.browser.report_run import XSS, hostile_docs
from tests.browser.test_report_browser import Server
from tests.util import manifest, run, table, write_config

CJK = re.compile(r"[\u4e00-\u9fff]{8}")


@pytest.fixture(scope="module")
def run_dir(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browse")
    (tmp / "hostile.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in hostile_docs(shared_data)), encoding="utf-8")
    luxun = (shared_data / "prose/luxun_fiction_essays.jsonl").read_bytes().splitlines()[:10]
    bad = [luxun[0], b'{"text": "\xe6\x9c\xaa\xe9\x97\xad\xe5\x90\x88', luxun[1], b"\xff\xfe" + XSS.encode() + b"\x1b[31m", luxun[2]]
    (tmp / "bad.jsonl").write_bytes(b"\n".join(bad) + b"\n")
    files = {"web": shared_data / "web/commoncrawl_2021-43_zh_100docs.jsonl", "luxun": shared_data / "prose/luxun_fiction_essays.jsonl",
             "hostile": tmp / "hostile.jsonl", "bad": tmp / "bad.jsonl"}
    # no clean stage: it strips markup, and the XSS payload is to reach kept, rejects and quarantine
    cfg = write_config(tmp, list(files.values()), [{"use": "pangu_rules"}, {"use": "sensitive_words"}, {"use": "dedup_exact"}], out="run")
    doc = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    doc["input"] = [{**doc["input"], "paths": [str(p)], "source": s} for s, p in files.items()]
    cfg.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    assert run(cfg) == 0
    return tmp / "run"


@pytest.fixture(scope="module")
def server(run_dir):
    s = Server(run_dir, eval_samples=3)
    yield s
    s.close()


@pytest.fixture
def watched(page):
    """The page, with every dialog and console error recorded."""
    page.dialogs, page.errors = [], []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    return page


def _no_script(page):
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate("document.scripts.length") == 0 and page.locator("img").count() == 0
    assert page.dialogs == [] and page.errors == []


def test_browse_from_the_nav_filter_page_and_open(watched, server, run_dir, artifacts):
    page, m = watched, manifest(run_dir)
    page.goto(server.url + "/")
    page.locator("nav a", has_text="browse documents").click()
    assert page.url.endswith("/browse") and page.locator("h1").inner_text() == "Browse documents: kept"
    assert CJK.search(page.locator("table.rows").inner_text())
    assert page.locator("p.summary").get_attribute("data-total") == str(m["totals"]["kept"])
    # every kept document, by "next" links, each once
    seen = []
    while True:
        seen += page.locator("table.rows tbody tr").evaluate_all("rs => rs.map(r => r.dataset.id)")
        nxt = page.locator("nav.pages a.next")
        if not nxt.count():
            break
        nxt.click()
    assert seen == table(run_dir, "kept")["id"].to_pylist() and len(seen) > 50
    assert page.locator("p.summary").inner_text().endswith(f"of {m['totals']['kept']:,}")
    # rejects by stage and reason, through the form
    page.locator("nav.tables a", has_text="rejects").click()
    stage = next(s for s in m["stages"] if len(s["dropped"]) > 1)
    reason, n = max(stage["dropped"].items(), key=lambda kv: kv[1])
    page.locator('select[name="stage"]').select_option(stage["name"])
    page.locator('select[name="reason"]').select_option(reason)
    page.locator('form.filters button[type="submit"]').click()
    assert f"stage={stage['name']}" in page.url and page.locator("p.summary").get_attribute("data-total") == str(n)
    reasons = page.locator('table.rows td[data-k="reason"]').all_inner_texts()
    assert len(reasons) == min(n, 50) and set(reasons) == {reason}
    page.screenshot(path=str(artifacts / "browse_rejects.png"), full_page=True)
    # open the first one: its preview and scores
    first = page.locator("table.rows tbody tr").first
    rid = first.get_attribute("data-id")
    first.locator("a.open").click()
    assert page.locator("h1").inner_text() == f"Rejected document {rid}"
    assert page.locator('td[data-k="reason"]').inner_text() == reason
    assert CJK.search(page.locator("#text").inner_text())
    # a kept document whole, by its link
    kept = table(run_dir, "kept")
    kid, text = next((i, t) for i, s, t in zip(*(kept[c].to_pylist() for c in ("id", "source", "text"))) if s == "luxun")
    needle = text[60:66]
    page.locator("nav a", has_text="browse documents").click()
    page.locator('input[name="q"]').fill(needle)
    page.locator('form.filters button[type="submit"]').click()
    row = page.locator(f'table.rows tbody tr[data-id="{kid}"]')
    assert row.locator("mark.hit-q").first.inner_text() == needle
    row.locator("a.open").click()
    assert page.locator("h1").inner_text() == f"Kept document {kid}" and page.locator("#text").inner_text() == text
    page.screenshot(path=str(artifacts / "browse_doc.png"), full_page=True)
    _no_script(page)


def test_hostile_text_renders_as_text_and_runs_nothing(watched, server, run_dir, artifacts):
    page = watched
    page.goto(server.url + "/browse")
    page.locator('input[name="q"]').fill("onerror=")
    page.locator('form.filters button[type="submit"]').click()
    assert page.locator("table.rows tbody tr").count() == 1
    assert '</script><img src=x onerror="window.__xss = 2; alert(2)">' in page.locator("table.rows").inner_text()
    page.locator("table.rows a.open").click()
    assert XSS in page.locator("#text").inner_text()
    _no_script(page)
    page.goto(server.url + "/browse?table=rejects&q=%3Cscript%3E")
    assert page.locator("table.rows tbody tr").count() >= 1 and XSS in page.locator("table.rows").inner_text()
    page.locator("table.rows a.open").first.click()
    assert XSS in page.locator("#text").inner_text()
    page.screenshot(path=str(artifacts / "browse_xss.png"), full_page=True)
    _no_script(page)
    # the payload in the URL: echoed escaped in the form, and in the one-line 400 reason
    page.goto(server.url + "/browse?table=kept&id=%3Cscript%3Ewindow.__xss%3D1%3C/script%3E")
    assert page.locator('input[name="id"]').input_value() == "<script>window.__xss=1</script>"
    page.goto(server.url + "/browse?table=kept&score=%3Cimg%20src=x%20onerror=window.__xss=2%3E")
    assert "unknown score column '<img src=x onerror=window.__xss=2>'" in page.locator("p.error").inner_text()
    page.errors.clear()  # Chromium logs the 400 response itself as a console error
    _no_script(page)


def test_quarantine_ledger_line(watched, server, run_dir, artifacts):
    page, m = watched, manifest(run_dir)
    page.goto(server.url + "/browse")
    page.locator("nav.tables a", has_text="quarantine").click()
    rows = page.locator("table.rows tbody tr")
    assert rows.count() == m["totals"]["quarantined"] == 2
    assert page.locator('table.rows td[data-k="line"]').all_inner_texts() == ["2", "4"]
    assert page.locator('table.rows td[data-k="file"]').all_inner_texts() == ["bad.jsonl", "bad.jsonl"]
    page.locator('select[name="reason"]').select_option("invalid_utf8")
    page.locator('form.filters button[type="submit"]').click()
    assert rows.count() == 1
    rows.first.locator("a.open").click()
    ledger = page.locator("p.ledger").inner_text()
    assert re.fullmatch(r"bad\.jsonl:4 \(byte \d+\) ingest invalid_utf8(: .*)?", ledger), ledger
    raw = page.locator("#raw").inner_text()
    assert raw == "\\xff\\xfe" + XSS + "\\x1b[31m"
    page.screenshot(path=str(artifacts / "browse_quarantine.png"), full_page=True)
    _no_script(page)
