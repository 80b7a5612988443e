"""The document browser's query layer (report/browse.py) on a real pipeline run: every filter returns
exactly the rows the tables hold (paging through all pages by the "next" cursor and by page number),
counts agree with the manifest, documents open whole, row groups ruled out by their statistics are
never read, and bad parameters are one-line 400s."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from corpusforge.report import browse, browse_html
from corpusforge.schema import DOC_SCHEMA, REJECT_SCHEMA
from tests.browser.report_run import make_run
from tests.util import manifest, run, table, write_config


@pytest.fixture(scope="module")
def run_dir(shared_data, tmp_path_factory):
    return make_run(shared_data, tmp_path_factory.mktemp("browse"))


def all_pages(run_dir, tbl, filters, per_page=7, by_cursor=True, budget=browse.SCAN_BUDGET):
    """Every row of a filtered table, page after page: by the next links (cursor, offset) or by page number."""
    rows, page, start, offset = [], 1, None, None
    while True:
        res = browse.query(str(run_dir), tbl, filters, page=page, per_page=per_page, start=start, offset=offset, budget=budget)
        assert res["offset"] == len(rows) or not by_cursor
        rows += res["rows"]
        assert len(res["rows"]) <= per_page
        if not res["more"]:
            return rows, res
        assert len(res["rows"]) == per_page or res["partial"]
        if by_cursor:
            page, start, offset = res["next_page"], res["next"], res["next_offset"]
        else:
            page += 1


def test_rejects_by_stage_and_reason_page_through_exactly_the_manifest_counts(run_dir):
    m = manifest(run_dir)
    rej = table(run_dir, "rejects")
    checked = 0
    for st in m["stages"]:
        for reason, n in st["dropped"].items():
            f = {"stage": st["name"], "reason": reason}
            rows, last = all_pages(run_dir, "rejects", f)
            ids = [r["id"] for r in rows]
            assert len(ids) == n and len(set(ids)) == n, (reason, len(ids), n)
            assert all(r["stage"] == st["name"] and r["reason"] == reason for r in rows)
            want = rej.filter(pc.and_(pc.equal(rej["stage"], st["name"]), pc.equal(rej["reason"], reason)))["id"].to_pylist()
            assert ids == want  # table order, nothing skipped or repeated
            assert browse.query(str(run_dir), "rejects", f)["total"] == n  # from the manifest, no scan
            by_number, _ = all_pages(run_dir, "rejects", f, by_cursor=False)
            assert [r["id"] for r in by_number] == ids
            checked += 1
    assert checked >= 5


def test_unfiltered_totals_come_from_the_footers_and_pages_jump(run_dir):
    m = manifest(run_dir)
    res = browse.query(str(run_dir), "kept", {}, per_page=50)
    assert res["total"] == m["totals"]["kept"] and res["more"] and res["row_groups"]["read"] == 0
    kept = table(run_dir, "kept")["id"].to_pylist()
    last = browse.query(str(run_dir), "kept", {}, page=(len(kept) - 1) // 50 + 1)
    assert [r["id"] for r in last["rows"]] == kept[(len(kept) - 1) // 50 * 50:] and not last["more"]
    rows, _ = all_pages(run_dir, "kept", {}, per_page=40)
    assert [r["id"] for r in rows] == kept


def test_source_score_range_id_and_substring_filters(run_dir):
    kept, rej = table(run_dir, "kept"), table(run_dir, "rejects")
    rows, last = all_pages(run_dir, "kept", {"source": "web"}, per_page=20)
    want = kept.filter(pc.equal(kept["source"], "web"))["id"].to_pylist()
    assert [r["id"] for r in rows] == want and last["total"] == len(want)  # the scan ran to the end: exact count
    rows, _ = all_pages(run_dir, "kept", {"score": "pangu_rules__zh_ratio", "min": "0.9", "max": 0.98})
    v = kept["pangu_rules__zh_ratio"].to_numpy()
    assert [r["id"] for r in rows] == kept.filter(pa.array((v >= 0.9) & (v <= 0.98)))["id"].to_pylist() and rows
    assert all(0.9 <= r["pangu_rules__zh_ratio"] <= 0.98 for r in rows)
    rows, _ = all_pages(run_dir, "rejects", {"score": "pangu_rules__chars", "max": "150"})
    want = [i for i, s in zip(rej["id"].to_pylist(), rej["scores"].to_pylist()) if dict(s or []).get("pangu_rules__chars", 1e9) <= 150]
    assert [r["id"] for r in rows] == want and rows and all(r["pangu_rules__chars"] <= 150 for r in rows)
    doc_id = kept["id"][17].as_py()
    res = browse.query(str(run_dir), "kept", {"id": doc_id})
    assert [r["id"] for r in res["rows"]] == [doc_id] and res["total"] == 1 and not res["more"]
    assert browse.query(str(run_dir), "kept", {"id": "nope"})["total"] == 0
    needle = kept["text"][5].as_py()[40:46]
    rows, _ = all_pages(run_dir, "kept", {"q": needle}, per_page=3)
    assert [r["id"] for r in rows] == [i for i, t in zip(kept["id"].to_pylist(), kept["text"].to_pylist()) if needle in t]
    rows, _ = all_pages(run_dir, "rejects", {"q": "<script>"}, per_page=3)
    assert {r["id"] for r in rows} == {i for i, t in zip(rej["id"].to_pylist(), rej["text_preview"].to_pylist()) if "<script>" in (t or "")}


def test_doc_opens_the_whole_row(run_dir):
    kept, rej = table(run_dir, "kept").to_pylist(), table(run_dir, "rejects").to_pylist()
    k = kept[-1]
    d = browse.doc(str(run_dir), "kept", k["id"])
    assert d["text"] == k["text"] and d["source"] == k["source"] and d["scores"]["pangu_rules__chars"] == k["pangu_rules__chars"]
    assert d["meta"]["_cf_file"] == dict(k["meta"])["_cf_file"]
    ref = browse.query(str(run_dir), "kept", {"id": k["id"]})["rows"][0]["ref"]
    assert browse.doc(str(run_dir), "kept", k["id"], at=ref)["text"] == k["text"]
    assert browse.doc(str(run_dir), "kept", kept[0]["id"], at=ref)["id"] == kept[0]["id"]  # a stale position: found by id
    r = next(x for x in rej if x["duplicate_of"])
    d = browse.doc(str(run_dir), "rejects", r["id"])
    assert (d["stage"], d["reason"], d["duplicate_of"], d["text_preview"]) == (r["stage"], r["reason"], r["duplicate_of"], r["text_preview"])
    assert d["scores"] == dict(r["scores"])
    with pytest.raises(browse.NotFound):
        browse.doc(str(run_dir), "rejects", k["id"])  # kept, so not a reject


def test_choices_come_from_the_manifest(run_dir):
    m = manifest(run_dir)
    ch = browse.choices(str(run_dir))
    assert ch["rejects"]["stages"] == [s["name"] for s in m["stages"] if s["dropped"]]
    assert set(ch["rejects"]["reasons"]) == {r for s in m["stages"] for r in s["dropped"]}
    assert ch["kept"]["sources"] == ["hostile", "luxun", "web", "zhwiki"]
    assert "pangu_rules__zh_ratio" in ch["kept"]["scores"] and "sensitive_words__categories" not in ch["kept"]["scores"]


@pytest.mark.parametrize("tbl,filters,kw,says", [
    ("docs", {}, {}, "unknown table"),
    ("kept", {"stage": "pangu_rules"}, {}, "no 'stage' filter"),
    ("kept", {"score": "pangu_rules__zh_ratio", "min": "abc"}, {}, "min='abc' is not a number"),
    ("kept", {"score": "nope__x"}, {}, "unknown score column 'nope__x'"),
    ("kept", {"min": "1"}, {}, "needs a score column"),
    ("kept", {"score": "pangu_rules__chars", "min": "5", "max": "1"}, {}, "min 5 > max 1"),
    ("quarantine", {"source": "web"}, {}, "no 'source' filter"),
    ("kept", {}, {"page": 0}, "page=0 is out of range"),
    ("kept", {}, {"page": "x"}, "not a whole number"),
    ("kept", {}, {"start": "9.0.0.0"}, "no file 9"),
    ("kept", {}, {"start": "0.0.0"}, "bad position"),
    ("kept", {}, {"start": "0.999.0.0"}, "past the end"),
    ("kept", {}, {"start": "0.0.x"}, "bad position"),
])
def test_bad_parameters_are_one_line_400s(run_dir, tbl, filters, kw, says):
    with pytest.raises(browse.BadQuery) as ei:
        browse.query(str(run_dir), tbl, filters, **kw)
    assert says in ei.value.message and "\n" not in ei.value.message
    status, page = browse_html.handle("/browse", {"table": [tbl], **{k: [str(v)] for k, v in {**filters, **kw}.items()}}, str(run_dir))
    assert status == 400 and "Traceback" not in page and '<p class="bad error">' in page
    assert browse_html.handle("/browse", {"bogus": ["1"]}, str(run_dir))[0] == 400
    assert browse_html.handle("/doc", {"table": ["kept"], "id": ["missing"]}, str(run_dir))[0] == 404


def test_quarantine_ledger_lines(tmp_path, shared_data):
    good = [json.loads(x) for x in (shared_data / "prose/luxun_fiction_essays.jsonl").open(encoding="utf-8")][:6]
    lines = [json.dumps({"text": d["text"]}, ensure_ascii=False).encode() for d in good]
    lines[2] = b'{"text": "\xe6\x9c\xaa\xe9\x97\xad\xe5\x90\x88'  # a record cut short: not JSON
    lines[4] = b"\xff\xfe<script>x</script>\x1b[31m"  # invalid UTF-8, markup and an escape sequence
    (tmp_path / "bad.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    assert run(write_config(tmp_path, [tmp_path / "bad.jsonl"], [{"use": "pangu_rules"}])) == 0
    out = tmp_path / "out"
    m = manifest(out)
    rows, last = all_pages(out, "quarantine", {}, per_page=1)
    assert len(rows) == m["totals"]["quarantined"] == 2 == last["total"]
    assert [r["line"] for r in rows] == [3, 5] and all(r["file"] == "bad.jsonl" and r["byte_offset"] > 0 for r in rows)
    for reason, n in m["stages"][0]["quarantined"].items():
        assert browse.query(str(out), "quarantine", {"stage": "ingest", "reason": reason})["total"] == n
        assert len(all_pages(out, "quarantine", {"stage": "ingest", "reason": reason})[0]) == n
    d = browse.doc(str(out), "quarantine", at=rows[1]["ref"])
    assert d["line"] == 5 and d["raw"] == "\\xff\\xfe<script>x</script>\\x1b[31m" and d["raw_bytes"] == len(lines[4])
    assert browse.query(str(out), "quarantine", {"q": "<script>"})["rows"][0]["line"] == 5
    status, page = browse_html.handle("/doc", {"table": ["quarantine"], "at": [rows[1]["ref"]]}, str(out))
    assert status == 200 and "&lt;script&gt;x&lt;/script&gt;" in page and "<script>" not in page and "bad.jsonl:5 (byte " in page


def _fake_run(d, groups: int = 10, rows: int = 100):
    """A run with one kept and one rejects file of `groups` row groups each: row group g holds stage
    s{g}, ids g*rows..., scores in [g, g+1) and the text "needle" in its middle row only."""
    (d / "kept").mkdir(parents=True)
    (d / "rejects").mkdir()
    kept_schema = DOC_SCHEMA.append(pa.field("q__score", pa.float64()))
    wk, wr = pq.ParquetWriter(d / "kept/part-00000.parquet", kept_schema), pq.ParquetWriter(d / "rejects/part-00000.parquet", REJECT_SCHEMA)
    for g in range(groups):
        ids = [f"{g * rows + i:08d}" for i in range(rows)]
        text = ["文本" * 20 if i != rows // 2 else "needle 文本" for i in range(rows)]
        score = g + np.arange(rows) / rows
        wk.write_table(pa.table({"id": ids, "source": ["web"] * rows, "text": text, "meta": pa.nulls(rows, DOC_SCHEMA.field("meta").type),
                                 "q__score": score}, schema=kept_schema))
        wr.write_table(pa.table({"id": ids, "source": ["web"] * rows, "stage": [f"s{g}"] * rows, "reason": [f"s{g}:r"] * rows,
                                 "scores": pa.array([[("q__score", float(s))] for s in score], REJECT_SCHEMA.field("scores").type),
                                 "duplicate_of": pa.nulls(rows, pa.string()), "text_preview": text,
                                 "meta": pa.nulls(rows, REJECT_SCHEMA.field("meta").type)}, schema=REJECT_SCHEMA))
    wk.close()
    wr.close()
    files = [{"kind": k, "path": f"{k}/part-00000.parquet", "rows": groups * rows, "sha256": k} for k in ("kept", "rejects")]
    stages = [{"name": f"s{g}", "dropped": {f"s{g}:r": rows}, "quarantined": {}} for g in range(groups)]
    (d / "manifest.json").write_text(json.dumps({"files": files, "stages": stages, "config": {}, "inputs": []}), encoding="utf-8")
    return d


def test_row_groups_ruled_out_by_statistics_are_never_read(tmp_path, monkeypatch):
    d = str(_fake_run(tmp_path / "fake"))
    read = []
    orig = pq.ParquetFile.read_row_groups
    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", lambda self, rgs, **kw: (read.extend(rgs), orig(self, rgs, **kw))[1])
    orig1 = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", lambda self, rg, **kw: (read.append(("display", rg)), orig1(self, rg, **kw))[1])

    def q(tbl, f, **kw):
        read.clear()
        return browse.query(d, tbl, f, **kw)

    res = q("rejects", {"stage": "s7", "source": "web"}, per_page=200)  # source: no total from the manifest, a real scan
    assert len(res["rows"]) == 100 and read == [7, ("display", 7)] and res["row_groups"] == {"read": 1, "skipped": 9}
    res = q("kept", {"score": "q__score", "min": "3.5", "max": "4.195"}, per_page=500)
    assert len(res["rows"]) == 70 and sorted(x for x in read if isinstance(x, int)) == [3, 4] and res["row_groups"]["skipped"] == 8
    res = q("rejects", {"score": "q__score", "min": "8.95"}, per_page=500)
    assert len(res["rows"]) == 105  # 8.95..8.99 and all of row group 9
    assert sorted(x for x in read if isinstance(x, int)) == [8, 9] and res["row_groups"]["skipped"] == 8
    res = q("kept", {"id": "00000512"})
    assert [r["id"] for r in res["rows"]] == ["00000512"] and read == [5, ("display", 5)]
    # an unfiltered deep page reads only the row group that holds it
    res = q("kept", {}, page=7, per_page=100)
    assert res["rows"][0]["id"] == "00000600" and read == [("display", 6)] and res["total"] == 1000
    # a substring search stops once the page plus one row is found: row groups 0..3 only
    res = q("kept", {"q": "needle"}, per_page=3)
    assert [r["id"] for r in res["rows"]] == ["00000050", "00000150", "00000250"] and res["more"] and res["next"] == "0.3.50.0"
    assert 9 not in read and res["total"] is None
    res = q("kept", {"q": "needle"}, page=2, per_page=3, start=res["next"])  # the next link resumes where the scan stopped
    assert [r["id"] for r in res["rows"]] == ["00000350", "00000450", "00000550"] and min(x for x in read if isinstance(x, int)) == 3


def test_a_scan_stops_at_its_time_budget_and_the_next_link_resumes(tmp_path, run_dir):
    d = str(_fake_run(tmp_path / "fake"))
    # budget 0: each request reads one chunk, answers with what it found, and its next link goes on from there
    rows, last = all_pages(d, "kept", {"q": "needle"}, per_page=3, budget=0)
    assert [r["id"] for r in rows] == [f"{g * 100 + 50:08d}" for g in range(10)] and last["total"] == 10
    first = browse.query(d, "kept", {"q": "needle"}, per_page=3, budget=0)
    assert first["partial"] and first["rows"][0]["id"] == "00000050" and first["next"] == "0.1.0.0" and first["next_page"] == 1
    # page 3 by number, still skipping when the budget ran out: the cursor carries the matches left to skip
    res, page, start, offset = None, 3, None, None
    while res is None or (res["partial"] and not res["rows"]):
        res = browse.query(d, "kept", {"q": "needle"}, page=page, per_page=3, start=start, offset=offset, budget=0)
        page, start, offset = res["next_page"], res["next"], res["next_offset"]
    assert res["offset"] == 6 and res["rows"][0]["id"] == "00000650"
    assert [r["id"] for r in all_pages(run_dir, "rejects", {"q": "的"}, per_page=20, budget=0)[0]] == \
        [r["id"] for r in all_pages(run_dir, "rejects", {"q": "的"}, per_page=20, budget=None)[0]]
