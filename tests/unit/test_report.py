"""The quality report on a real pipeline run over the shared data: every number in the HTML equals
the manifest or a count recomputed here from the persisted tables; samples are deterministic;
document text is escaped; ratings round-trip; the server's guards hold."""

import hashlib
import html
import json
import re
import statistics
import threading
import urllib.error
import urllib.request
from collections import Counter

import pyarrow.compute as pc
import pytest

from corpusforge.cli import main
from corpusforge.report import extras, human_eval
from corpusforge.report.build import RunReport, build_report
from corpusforge.report.serve import make_server
from tests.browser.report_run import XSS, make_run, make_xss_run
from tests.util import assert_audit_ok, manifest, table


@pytest.fixture(scope="module")
def run_dir(shared_data, tmp_path_factory):
    return make_run(shared_data, tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def report_html(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("html") / "report.html"
    assert main(["report", str(run_dir), "--out", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def _cells(html_text: str, row_attr: str, value: str) -> dict[str, str]:
    """data-k → data-v (or text) of the table row with row_attr="value"."""
    m = re.search(rf'<tr {row_attr}="{re.escape(html.escape(value))}">(.*?)</tr>', html_text)
    assert m, (row_attr, value)
    return {k: v or html.unescape(t) for k, v, t in re.findall(r'<td data-k="([^"]*)"(?: data-v="([^"]*)")?[^>]*>(.*?)</td>', m.group(1))}


def test_funnel_and_reasons_equal_manifest(run_dir, report_html):
    assert_audit_ok(run_dir)
    m = manifest(run_dir)
    for s in m["stages"]:
        c = _cells(report_html, "data-stage", s["name"])
        assert (int(c["in"]), int(c["kept"])) == (s["in"], s["kept"])
        assert int(c["dropped"]) == sum(s["dropped"].values()) and int(c["quarantined"]) == sum(s["quarantined"].values())
        for reason, n in s["dropped"].items():
            assert int(_cells(report_html, "data-reason", reason)["documents"]) == n
    assert "equal to the manifest" in report_html
    assert m["stages"][2]["dropped"]["pangu_rules:ads"] >= 12  # the real ad/gambling spam of the web sample


def test_per_source_counts_from_tables(run_dir, report_html):
    kept, rej = table(run_dir, "kept"), table(run_dir, "rejects")
    kept_by = Counter(kept.column("source").to_pylist())
    chars_by = Counter()
    for s, t in zip(kept.column("source").to_pylist(), kept.column("text").to_pylist()):
        chars_by[s] += len(t)
    rej_by = Counter(zip(rej.column("source").to_pylist(), rej.column("stage").to_pylist()))
    assert set(kept_by) == {"web", "luxun", "zhwiki", "hostile"}
    for src in ("web", "luxun", "zhwiki"):
        c = _cells(report_html, "data-source", src)
        assert int(c["kept"]) == kept_by[src] and int(c["kept characters"]) == chars_by[src]
        assert int(c["dropped by dedup_minhash"]) == rej_by[(src, "dedup_minhash")]
        assert int(c["docs in"]) == kept_by[src] + sum(n for (s, _), n in rej_by.items() if s == src)


def test_dedup_clusters_from_rejects(run_dir, report_html):
    rej = table(run_dir, "rejects")
    for st in ("dedup_exact", "dedup_minhash"):
        t = rej.filter(pc.equal(rej.column("stage"), st))
        sizes = Counter(t.column("duplicate_of").to_pylist())
        hist = Counter(n + 1 for n in sizes.values())
        assert f'data-stage="{st}">{len(sizes):,} clusters, {t.num_rows:,} documents removed' in report_html
        assert t.num_rows == sum(manifest(run_dir)["stages"][[s["name"] for s in manifest(run_dir)["stages"]].index(st)]["dropped"].values())
        sec = report_html[report_html.index(f'class="dedup-summary" data-stage="{st}">'):]
        rows = re.findall(r'<td data-k="cluster size" data-v="(\d+)"[^>]*>[^<]*</td><td data-k="clusters" data-v="(\d+)"', sec.split("</table>")[0])
        assert {int(a): int(b) for a, b in rows} == dict(hist)
    # a sample cluster lists the members that point at its representative
    rep = re.search(r'<details class="cluster" data-cluster="([0-9a-f]+)"', report_html).group(1)
    members = set(rej.filter(pc.equal(rej.column("duplicate_of"), rep)).column("id").to_pylist())
    block = report_html[report_html.index(f'data-cluster="{rep}"'):].split("</details>")[0]
    assert members and all(i in block for i in list(members)[:12])


def test_reason_samples_are_smallest_blake2b(run_dir, report_html):
    rej = table(run_dir, "rejects")
    seed = str(manifest(run_dir)["config"]["run"]["seed"])
    for reason in ("pangu_rules:ads", "dedup_minhash:near_duplicate"):
        ids = rej.filter(pc.equal(rej.column("reason"), reason)).column("id").to_pylist()
        key = lambda i: hashlib.blake2b(i.encode(), digest_size=8, key=f"reason:{seed}".encode()).digest()  # noqa: E731
        want = sorted(ids, key=key)[:3]
        block = report_html[report_html.index(f'<details class="reason-samples" data-reason="{reason}"'):].split("</details>")[0]
        assert re.findall(r'<div class="sample" data-id="([0-9a-f]+)"', block) == want


def test_report_is_deterministic_and_offline(run_dir, report_html, tmp_path):
    again = tmp_path / "again.html"
    build_report([str(run_dir)], str(again))
    assert again.read_text(encoding="utf-8") == report_html
    assert not re.search(r"<script|src=\"http|href=\"http|@import|url\(", report_html, re.I)
    assert html.escape("default-src 'none'; style-src 'unsafe-inline'") in report_html  # the CSP meta


def test_score_histograms_and_thresholds(run_dir, report_html):
    m = manifest(run_dir)
    pr = next(s for s in m["stages"] if s["name"] == "pangu_rules")
    r = RunReport(str(run_dir), eval_samples=5)
    h = r.data["scores"]["pangu_rules__chars"]
    # every document that reached pangu_rules has its chars score: kept by it + dropped by it
    assert sum(h["kept"]) + sum(h["dropped"]) == pr["in"] and sum(h["dropped"]) == sum(pr["dropped"].values())
    assert (150.0, "drop below min_chars") in r.data["thresholds"]["pangu_rules__chars"]
    assert re.search(r'data-score="pangu_rules__chars">.*?class="threshold" data-value="150.0"', report_html)
    over = extras.thresholds({"config": {"stages": [{"use": "pangu_rules", "with": {"overrides": {"min_chars": 200}}},
                                                    {"use": "sensitive_words", "with": {"drop_at_hits": 5}}]}, "rules": {}})
    assert over["pangu_rules__chars"][0][0] == 200 and "changed since the run" in over["pangu_rules__chars"][0][1]
    assert over["sensitive_words__hits"] == [(5.0, "drop at ≥ drop_at_hits")]


def test_highlight_marks_exactly_the_stage_hits(run_dir, shared_data):
    import pyarrow as pa

    r = RunReport(str(run_dir), eval_samples=5)
    texts = [json.loads(x)["text"] for x in (shared_data / "web/commoncrawl_2021-43_zh_100docs.jsonl").open(encoding="utf-8")]
    rules = next(s for s in extras.stage_objects(manifest(run_dir)) if s.name == "pangu_rules")
    rules.setup()
    ad_hits = rules.score(pa.record_batch({"text": pa.array(texts)})).get("ad_hits").to_pylist()
    checked = 0
    for t, ads in zip(texts, ad_hits):
        spans = r.highlighter.spans(t)
        if ads and not any(k == "sensitive" for _, _, k in spans):
            assert sum(k == "ad" for _, _, k in spans) == ads  # the same hits the stage counted
            checked += 1
    assert checked >= 12
    out = r.highlighter.html("<b>六合彩</b> & 法 轮 功")
    assert out.startswith("&lt;b&gt;<mark class=\"hit-ad\"") and "&amp;" in out and 'hit-sensitive" title="sensitive hit">法 轮 功' in out
    # the sensitive-word page of the hostile file is a sample of its reason, with its hits marked
    (page,) = r.data["reason_samples"]["sensitive_words\x1fsensitive_words:sensitive_words"]
    assert page["source"] == "hostile" and r.highlighter.html(page["preview"]).count('class="hit-sensitive"') == 4


def test_clean_before_is_the_input_record(run_dir, report_html, shared_data):
    r = RunReport(str(run_dir), eval_samples=5)
    assert r.data["clean_samples"]
    kept = {x["id"]: x for x in table(run_dir, "kept").select(["id", "text", "meta"]).to_pylist()}
    for s in r.data["clean_samples"]:
        meta = dict(kept[s["id"]]["meta"])
        src = {"web": "web/commoncrawl_2021-43_zh_100docs.jsonl", "luxun": "prose/luxun_fiction_essays.jsonl",
               "zhwiki": "neardup/zhwiki_versions_pool.jsonl"}.get(s["source"])
        if src:
            line = (shared_data / src).read_text(encoding="utf-8").splitlines()[int(meta["_cf_line"]) - 1]
            assert s["before"] == json.loads(line)["text"][:3000]
        assert s["after"] == kept[s["id"]]["text"][:3000]
    assert 'class="doc before"' in report_html and "<del>" in report_html


def test_xss_payload_is_text(shared_data, tmp_path):
    x = make_xss_run(shared_data, tmp_path)
    kept_ids = set(table(x, "kept").column("id").to_pylist())
    assert any(XSS in t for t in table(x, "kept").column("text").to_pylist()) and kept_ids
    out = tmp_path / "x.html"
    build_report([str(x)], str(out), eval_samples=500)
    text = out.read_text(encoding="utf-8")
    assert html.escape(XSS[:40]) in text and not re.search(r"<script|<img|onerror=\"", text, re.I)


def test_extras_sections_in_the_shapes_the_tools_write(run_dir, tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    mix = {"web": {"requested_share": 0.6281, "achieved_share": 0.6302, "requested_epochs": 0.85, "achieved_epochs": 0.86,
                   "tokens_available": 120000, "tokens_drawn": 102000, "docs_drawn": 61},
           "luxun": {"requested_share": 0.3719, "achieved_share": 0.3698, "requested_epochs": 3.65, "achieved_epochs": 3.6,
                     "tokens_available": 16600, "tokens_drawn": 59900, "docs_drawn": 331}}
    (shards / "shards.json").write_text(json.dumps({"format": "corpusforge-shards/1", "sources": mix}), encoding="utf-8")
    logs = []
    for name, base in (("clean", 6.0), ("raw", 7.0)):
        d = tmp_path / name
        d.mkdir()
        rows = [{"step": s, "tokens": s * 4096, "loss": base - s / 100, "lr": 3e-4} for s in range(0, 200, 10)]
        rows += [{"step": s, "eval_loss": base - s / 120, "eval_ppl": 2.718 ** (base - s / 120)} for s in (50, 100, 190)]
        (d / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        logs.append(str(d))
    qe = tmp_path / "quality_eval.json"
    cands = {"raw_web": {"runs": [{"seed": s, "heldout_ppl": p, "heldout_loss": 6.0} for s, p in ((1, 410.0), (2, 415.0))], "mean_ppl": 412.5, "std_ppl": 2.5},
             "cleaned": {"runs": [{"seed": s, "heldout_ppl": p, "heldout_loss": 5.3} for s, p in ((1, 198.0), (2, 198.5))], "mean_ppl": 198.25, "std_ppl": 0.25}}
    qe.write_text(json.dumps({"candidates": cands, "ranking": ["cleaned", "raw_web"], "best": "cleaned"}), encoding="utf-8")  # quality-eval's shape
    out = tmp_path / "r.html"
    assert main(["report", str(run_dir), "--out", str(out), "--shards", str(shards), "--train", logs[0], "--train", logs[1],
                 "--quality-eval", str(qe)]) == 0
    t = out.read_text(encoding="utf-8")
    c = _cells(t, "data-source", "luxun")  # the per-source table gets the tokens, the mixture table the shares
    assert c["tokens drawn"] == "59900"
    sec = t[t.index('id="run-0-mixture"'):]
    c = _cells(sec, "data-source", "web")
    assert float(c["requested_share"]) == 0.6281 and float(c["achieved_epochs"]) == 0.86 and c["docs_drawn"] == "61"
    c = _cells(t, "data-train", "raw")
    assert c["last step"] == "190" and float(c["eval PPL"]) == pytest.approx(2.718 ** (7.0 - 190 / 120))
    c = _cells(t, "data-candidate", "cleaned")
    assert float(c["mean_ppl"]) == 198.25 and c["heldout PPL per seed"] == "seed 1: 198, seed 2: 198.5"
    assert t.count("<polyline") == 4  # loss and eval PPL, two runs each
    # found without options inside the run directory
    assert extras.discover(str(tmp_path)) == {"shards": [str(shards)], "train": sorted(logs), "quality_eval": [str(qe)], "ablation": []}


def test_wilson_interval():
    assert human_eval.wilson(0, 10) == (0.0, pytest.approx(0.27753, abs=1e-4))
    lo, hi = human_eval.wilson(5, 10)
    assert (lo, hi) == (pytest.approx(0.23659, abs=1e-4), pytest.approx(0.76341, abs=1e-4))
    assert human_eval.wilson(0, 0) == (0.0, 1.0)


def test_ratings_saved_atomically_and_aggregated(run_dir, tmp_path):
    r = RunReport(str(run_dir), eval_samples=4)
    ids = [d["id"] for d in r.data["eval_samples"]]
    assert len(ids) == 4
    human_eval.save_rating(str(run_dir), ids[0], "ann", 5, [])
    human_eval.save_rating(str(run_dir), ids[1], "ann", 4, ["ads"])
    human_eval.save_rating(str(run_dir), ids[0], "bob", 1, [])
    human_eval.save_rating(str(run_dir), ids[0], "bob", 2, ["repeated"])  # replaces bob's first rating
    try:
        d = json.loads((run_dir / "human_eval.json").read_text(encoding="utf-8"))
        assert d["ratings"][ids[0]]["bob"] == {"fluency": 2, "flags": ["repeated"], "rule": "kept"}
        a = human_eval.aggregate(d)
        assert (a["ratings"], a["low_quality"], a["documents"], a["reviewers"]) == (3, 2, 2, 2)
        assert a["ci95"] == [pytest.approx(x) for x in human_eval.wilson(2, 3)]
        half = 1.959964 * statistics.stdev([5, 4, 2]) / 3 ** 0.5  # fluency 5, 4, 2: normal 95 % interval of the mean
        assert a["mean_fluency"] == pytest.approx(11 / 3) and a["fluency_ci95"] == [pytest.approx(11 / 3 - half), pytest.approx(11 / 3 + half)]
        assert human_eval.aggregate(d, "kept") == a and human_eval.aggregate(d, "flipped")["ratings"] == 0
        out = tmp_path / "r.html"
        build_report([str(run_dir)], str(out))
        t = out.read_text(encoding="utf-8")
        row = re.search(r'<table class="human-agg">.*?</table>', t).group(0)
        assert 'data-k="low-quality ratio" data-v="0.6666666666666666"' in row and 'data-k="ratings" data-v="3"' in row
        assert_audit_ok(run_dir)  # the ratings file is outside the audited output
        with pytest.raises(Exception):
            human_eval.save_rating(str(run_dir), ids[0], "ann", 7, [])
    finally:
        (run_dir / "human_eval.json").unlink()


def _req(url, data=None, headers=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers or {})) as resp:
            return resp.status, dict(resp.headers), resp.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8")


def test_server_guards(run_dir):
    r = RunReport(str(run_dir), eval_samples=3)
    srv = make_server(r, {"train": [], "quality_eval": []}, "127.0.0.1", 0)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        code, h, body = _req(base + "/human-eval")
        assert code == 200 and "default-src 'none'" in h["Content-Security-Policy"] and "frame-ancestors 'none'" in h["Content-Security-Policy"]
        token = re.search(r'name="token" value="([^"]+)"', body).group(1)
        doc = r.data["eval_samples"][0]["id"]
        assert _req(base + "/", headers={"Host": "attacker.example:80"})[0] == 421
        form = f"token={token}&doc_id={doc}&reviewer=ann&fluency=4&flags=ads".encode()
        assert _req(base + "/human-eval", form.replace(token.encode(), b"wrong"))[0] == 403
        assert _req(base + "/human-eval", form, {"Origin": "http://attacker.example"})[0] == 403
        assert _req(base + "/human-eval", form.replace(doc.encode(), b"not-a-sample"))[0] == 400
        assert not (run_dir / "human_eval.json").exists()
        code, _, body = _req(base + "/human-eval", form, {"Origin": base})
        assert code == 200 and "saved rating of" in body  # after the 303 redirect
        assert human_eval.load(str(run_dir))["ratings"] == {doc: {"ann": {"fluency": 4, "flags": ["ads"], "rule": "kept"}}}
        assert _req(base + "/nope")[0] == 404
    finally:
        srv.shutdown()
        srv.server_close()
        (run_dir / "human_eval.json").unlink(missing_ok=True)


def test_cli_errors_and_help(run_dir, capsys, tmp_path):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert main(["report", "serve", str(run_dir), "--host", "0.0.0.0"]) == 2
    assert "remote_refused" in capsys.readouterr().err
    assert main(["report", "serve", str(run_dir), str(run_dir)]) == 2
    assert main(["report", str(run_dir), "--port", "1"]) == 2
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "not_a_run" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    out = capsys.readouterr().out
    for opt in ("--out", "--shards", "--train", "--quality-eval", "--samples", "--eval-samples", "--host", "--port", "--allow-remote", "--allowed-host", "serve"):
        assert opt in out
