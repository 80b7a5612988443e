"""HTML input: extractor quality against readability's hand-checked gold and GNE's output; the html
and warc readers through a real run (title and URL in meta, ledger balanced)."""

import io
import json
import re
from collections import Counter

from corpusforge.io.html_extract import decode_html, extract
from tests.util import assert_audit_ok, quarantine_rows, run, table, write_config

READABILITY = ["gmw", "qq", "youth", "pixnet"]


def bigram_f1(got: str, gold: str) -> float:
    a = Counter(re.sub(r"\s+", "", got)[i:i + 2] for i in range(max(len(re.sub(r"\s+", "", got)) - 1, 0)))
    g = Counter(re.sub(r"\s+", "", gold)[i:i + 2] for i in range(max(len(re.sub(r"\s+", "", gold)) - 1, 0)))
    ov = sum((a & g).values())
    p, r = ov / max(sum(a.values()), 1), ov / max(sum(g.values()), 1)
    return 2 * p * r / max(p + r, 1e-9)


def scores(shared_data, extractor):
    root = shared_data / "web/html"
    rd = []
    for name in READABILITY:
        gold = extract(decode_html((root / f"readability/{name}/expected.html").read_bytes()), "page")[0]
        rd.append(bigram_f1(extract(decode_html((root / f"readability/{name}/source.html").read_bytes()), extractor)[0], gold))
    gne = []
    for row in map(json.loads, open(root / "gne_extractor_output.jsonl", encoding="utf-8")):
        page = root / "gne" / row["page_path"].removeprefix("tests/").replace("/", "__")
        gne.append(bigram_f1(extract(decode_html(page.read_bytes()), extractor)[0], row["text"]))
    return sum(rd) / len(rd), sum(gne) / len(gne), len(gne)


def test_extractor_choice_by_measurement(shared_data):
    traf = scores(shared_data, "trafilatura")
    main = scores(shared_data, "main")
    print(f"char-bigram F1 readability/GNE: trafilatura {traf[0]:.3f}/{traf[1]:.3f}, resiliparse {main[0]:.3f}/{main[1]:.3f}")
    assert traf[2] == 12
    assert traf[0] >= 0.95 and traf[1] >= 0.9  # measured 0.985 / 0.962
    assert traf[0] > main[0] and traf[1] > main[1]  # why trafilatura is the default


def test_title_and_traditional_page(shared_data):
    raw = (shared_data / "web/html/readability/pixnet/source.html").read_bytes()
    text, title, _ = extract(decode_html(raw))
    meta = json.loads((shared_data / "web/html/readability/pixnet/expected-metadata.json").read_text(encoding="utf-8"))
    assert title and meta["title"][:8] in title
    assert len(text) > 500


def test_html_reader_run(shared_data, tmp_path):
    pages = sorted((shared_data / "web/html/gne").glob("*.html"))[:6]
    cfg = write_config(tmp_path, pages, [{"use": "clean"}, {"use": "pangu_rules"}], input_opts={"format": "html", "source": "news"})
    assert run(cfg) == 0
    out = tmp_path / "out"
    assert_audit_ok(out)
    rows = [r for kind in ("kept", "rejects") if table(out, kind) is not None for r in table(out, kind).to_pylist()]
    assert len(rows) == 6
    metas = [dict(r["meta"]) for r in rows]
    assert all(m.get("title") for m in metas)


def test_warc_reader_run(shared_data, tmp_path):
    pages = sorted((shared_data / "web/html/gne").glob("*.html"))[:3]
    buf = io.BytesIO()
    for k, p in enumerate(pages):  # WARC/1.0 response records around the real pages
        block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + p.read_bytes()
        head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://example.cn/{k}.html\r\n"
                f"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-00000000000{k}>\r\nWARC-Date: 2021-10-20T00:00:00Z\r\n"
                f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(block)}\r\n\r\n")
        buf.write(head.encode() + block + b"\r\n\r\n")
    plain = buf.getvalue()
    block = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0"
    buf.write((f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://example.cn/logo.jpg\r\n"
               f"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-000000000009>\r\nWARC-Date: 2021-10-20T00:00:00Z\r\n"
               f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(block)}\r\n\r\n").encode() + block + b"\r\n\r\n")
    w = tmp_path / "pages.warc"
    w.write_bytes(buf.getvalue())
    cfg = write_config(tmp_path, [w], [{"use": "clean"}], input_opts={"format": "warc"})
    assert run(cfg) == 0
    assert_audit_ok(tmp_path / "out")
    kept = table(tmp_path / "out", "kept").to_pylist()
    assert [dict(r["meta"])["url"] for r in kept] == [f"http://example.cn/{k}.html" for k in range(3)]
    assert all(len(r["text"]) > 100 for r in kept)
    q = quarantine_rows(tmp_path / "out")
    assert [(r["reason"], r["line"]) for r in q] == [("not_html", 4)]  # the JPEG response: accounted for, not text
    # the same records gzip-compressed (one member per file, as WARC.gz is read): same texts
    import gzip

    wz = tmp_path / "gz" / "pages.warc.gz"
    wz.parent.mkdir()
    wz.write_bytes(gzip.compress(plain))
    cfg = write_config(tmp_path, [wz], [{"use": "clean"}], input_opts={"format": "warc"}, out="outgz", name="gz.yaml")
    assert run(cfg) == 0
    assert_audit_ok(tmp_path / "outgz")
    assert [r["text"] for r in table(tmp_path / "outgz", "kept").to_pylist()] == [r["text"] for r in kept]
