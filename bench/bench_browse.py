"""The document browser of `corpusforge report serve` (/browse, /doc) on a ~1 GB run: milliseconds per
page of 50 rows through the HTTP server on 127.0.0.1, p50 and max over --repeats requests each, with
floors measured in the same run (pyarrow reading one kept row group's id, source and text columns;
an HTTP round trip of a one-line 400 page).

Data: a synthetic run written with pyarrow in the real layout, Parquet sized to --gb: parts of 10,000
input records (one input split), each from one source (PanGu-α's five, Table 2 shares); kept files with
one row group per input batch of the default limits.batch_rows (ParquetSink.write per batch); rejects as the phased local
engine leaves them (the earlier phases' rejects copied into one row group, then one row group per batch
of the last phase's); a small quarantine file per part with raw bytes. Texts are windows of the shared
real Chinese text (Wikipedia, Lu Xun, Common Crawl, news) at varied offsets and lengths, ids blake2b,
a manifest.json with the shape of a real one and balanced per-stage counts. 40 % kept; rejects by
pangu_rules (4 reasons), sensitive_words, dedup_exact and dedup_minhash. Cached under
$TMPDIR/corpusforge-bench-browse-<gb>gb/ (delete it to regenerate).

    python bench/bench_browse.py            # --gb 1.0
    python bench/bench_browse.py --gb 0.1   # quick

The server is `corpusforge report serve RUN --port 0` in a child process (its start collects the
report once; not timed). A page's scan stops after browse.SCAN_BUDGET (0.25 s) with the rows found
so far and a "search on" link, so a rare substring's page can hold fewer than 50 rows; the line after
the "in no document" case follows those links over the whole table. The last line is the headline."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corpusforge.config import LimitsConfig  # noqa: E402
from corpusforge.rules_files import sha256_file  # noqa: E402
from corpusforge.schema import DOC_SCHEMA, META_TYPE, PREVIEW_CHARS, QUARANTINE_SCHEMA, REJECT_SCHEMA  # noqa: E402

SHARED = Path(os.environ.get("CORPUSFORGE_SHARED", ROOT.parent / "shared")) / "data"
PART_DOCS, BATCH = 10_000, LimitsConfig().batch_rows  # the engine's default batch: its row groups
SOURCES = [("open_data", 27.9), ("encyclopedia", 22.0), ("ebooks", 299.0), ("common_crawl", 714.9), ("news", 35.5)]
STAGES = ["ingest", "clean", "pangu_rules", "sensitive_words", "dedup_exact", "dedup_minhash"]
REASONS = [("pangu_rules", "pangu_rules:low_zh_ratio", 0.10), ("pangu_rules", "pangu_rules:too_short", 0.06),
           ("pangu_rules", "pangu_rules:ads", 0.04), ("pangu_rules", "pangu_rules:navigation", 0.02),
           ("sensitive_words", "sensitive_words:sensitive_words", 0.02), ("dedup_exact", "dedup_exact:exact_duplicate", 0.08),
           ("dedup_minhash", "dedup_minhash:near_duplicate", 0.28)]
SCORES = {"clean__chars_removed": pa.int64(), "clean__dup_paragraphs": pa.int64(), "pangu_rules__chars": pa.int64(),
          "pangu_rules__zh_ratio": pa.float64(), "pangu_rules__ad_hits": pa.int64(), "pangu_rules__ad_density": pa.float64(),
          "pangu_rules__prose_frac": pa.float64(), "sensitive_words__hits": pa.int64()}
Q_REASONS = ["json_decode_error", "invalid_utf8", "missing_text"]


def _corpus() -> str:
    texts = []
    for f in ("prose/zhwiki_articles_100.jsonl", "prose/luxun_fiction_essays.jsonl", "web/commoncrawl_2021-43_zh_100docs.jsonl",
              "diverse/news_thucnews_sina.jsonl", "diverse/news_sogoucs_sohu.jsonl"):
        texts += [json.loads(x)["text"] for x in (SHARED / f).open(encoding="utf-8")]
    return "\n".join(texts)


def _meta(n: int, start: int, rel: str) -> pa.Array:
    keys = pa.array(["_cf_file", "_cf_line", "_cf_offset"] * n)
    vals = pa.array([v for i in range(start, start + n) for v in (rel, str(i + 1), str(i * 3300))])
    return pa.MapArray.from_arrays(pa.array(np.arange(0, 3 * n + 1, 3, dtype=np.int32)), keys, vals, type=META_TYPE)


def _scores_map(n: int, stage: str, rng) -> pa.Array:
    """The rejects' `scores`: every score of the stages the document passed or was dropped by."""
    keys = [k for k in SCORES if STAGES.index(k.split("__")[0]) <= STAGES.index(stage)]
    vals = rng.uniform(0, 1, (n, len(keys)))
    return pa.MapArray.from_arrays(pa.array(np.arange(0, n * len(keys) + 1, len(keys), dtype=np.int32)), pa.array(keys * n),
                                   pa.array(vals.ravel()), type=REJECT_SCHEMA.field("scores").type)


def synthesize(d: Path, gb: float) -> None:
    rng = np.random.default_rng(11)
    corpus = _corpus()
    kept_schema = DOC_SCHEMA
    for c, t in SCORES.items():
        kept_schema = kept_schema.append(pa.field(c, t))
    shares = np.array([s for _, s in SOURCES]) / sum(s for _, s in SOURCES)
    for sub in ("kept", "rejects", "quarantine"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    files, counts, quarantined, inputs, size, p = [], np.zeros(len(REASONS) + 1, np.int64), {}, [], 0, 0
    while size < gb * 1e9:
        source = SOURCES[int(rng.choice(len(SOURCES), p=shares))][0]
        rel = f"{source}/shard-{p:05d}.jsonl"
        ids = [hashlib.blake2b(f"{source}\x1f{rel}\x1f{i}".encode(), digest_size=10).hexdigest() for i in range(PART_DOCS)]
        fate = rng.choice(len(REASONS) + 1, size=PART_DOCS, p=[0.40] + [x for _, _, x in REASONS])  # 0 = kept
        counts += np.bincount(fate, minlength=len(REASONS) + 1)
        starts, lens = rng.integers(0, len(corpus) - 4000, PART_DOCS), rng.integers(150, 2500, PART_DOCS)
        text = lambda i: corpus[starts[i]:starts[i] + lens[i]]  # noqa: E731
        name = f"part-{p:05d}.parquet"
        kw, rw = pq.ParquetWriter(d / "kept" / name, kept_schema, compression="zstd"), pq.ParquetWriter(d / "rejects" / name, REJECT_SCHEMA, compression="zstd")
        early, late = [], []  # rejects of the earlier phases (copied into one row group), of the last phase (one per batch)
        for lo in range(0, PART_DOCS, BATCH):
            b = np.arange(lo, min(lo + BATCH, PART_DOCS))
            k = b[fate[b] == 0]
            cols = {"id": [ids[i] for i in k], "source": [source] * len(k), "text": [text(i) for i in k], "meta": _meta(len(k), lo, rel),
                    "clean__chars_removed": rng.poisson(3, len(k)), "clean__dup_paragraphs": rng.poisson(0.2, len(k)),
                    "pangu_rules__chars": lens[k], "pangu_rules__zh_ratio": rng.uniform(0.6, 1.0, len(k)),
                    "pangu_rules__ad_hits": rng.poisson(0.2, len(k)), "pangu_rules__ad_density": rng.uniform(0, 1, len(k)),
                    "pangu_rules__prose_frac": rng.uniform(0.3, 1, len(k)), "sensitive_words__hits": rng.poisson(0.1, len(k))}
            kw.write_table(pa.table(cols, schema=kept_schema))  # one row group per batch, as ParquetSink.write
            for stage in STAGES[2:]:
                r = b[np.isin(fate[b], [j + 1 for j, (s, _, _) in enumerate(REASONS) if s == stage])]
                if not len(r):
                    continue
                dedup = stage.startswith("dedup")
                kept_ids = np.flatnonzero(fate == 0)
                t = pa.table({"id": [ids[i] for i in r], "source": [source] * len(r), "stage": [stage] * len(r),
                              "reason": [REASONS[fate[i] - 1][1] for i in r], "scores": _scores_map(len(r), stage, rng),
                              "duplicate_of": pa.array([ids[kept_ids[j]] for j in rng.integers(0, len(kept_ids), len(r))] if dedup else [None] * len(r), pa.string()),
                              "text_preview": [text(i)[:PREVIEW_CHARS] for i in r], "meta": _meta(len(r), lo, rel)}, schema=REJECT_SCHEMA)
                (late if stage == STAGES[-1] else early).append(t)
        rw.write_table(pa.concat_tables(early))  # one row group (write_table of the copied table)
        for t in late:
            rw.write_table(t)
        kw.close()
        rw.close()
        nq = int(rng.integers(5, 40))
        lines = np.sort(rng.choice(PART_DOCS + nq, nq, replace=False)) + 1
        qr = [Q_REASONS[int(x)] for x in rng.integers(0, 3, nq)]
        raw = [(b"\xff\xfe" if r == "invalid_utf8" else b"") + text(int(i) % PART_DOCS)[:200].encode() + (b"" if r == "missing_text" else b'"}')
               for i, r in zip(lines, qr)]
        pq.write_table(pa.table({"id": pa.nulls(nq, pa.string()), "stage": ["ingest"] * nq, "file": [rel] * nq, "line": lines,
                                 "byte_offset": lines * 3300, "reason": qr, "detail": [f"{r} at line {n}" for r, n in zip(qr, lines)],
                                 "raw_sha1": [hashlib.sha1(x).hexdigest() for x in raw], "raw": pa.array(raw, pa.binary())},
                                schema=QUARANTINE_SCHEMA), d / "quarantine" / name, compression="zstd")
        for r in qr:
            quarantined[r] = quarantined.get(r, 0) + 1
        for kind, rows in (("kept", int((fate == 0).sum())), ("rejects", int((fate > 0).sum())), ("quarantine", nq)):
            files.append({"kind": kind, "path": f"{kind}/{name}", "rows": rows, "sha256": sha256_file(str(d / kind / name))})
            size += (d / kind / name).stat().st_size
        inputs.append({"path": rel, "sha256": hashlib.sha256(rel.encode()).hexdigest(), "size": (PART_DOCS + nq) * 3300, "source": source})
        p += 1
        print(f"  part {p}: {size / 1e9:.2f} GB", end="\r", flush=True)
    docs = int(counts.sum())
    stages, alive = [], docs
    for name in STAGES:
        dropped = {r: int(counts[j + 1]) for j, (s, r, _) in enumerate(REASONS) if s == name}
        q = quarantined if name == "ingest" else {}
        stages.append({"name": name, "key": name if name == "ingest" else f"{name}@1", "in": alive + sum(q.values()),
                       "kept": alive - sum(dropped.values()), "dropped": dropped, "quarantined": q, "fixes": {}})
        alive -= sum(dropped.values())
    blocks = [{"format": "jsonl", "paths": [str(d / "input" / s / "*.jsonl")], "text_field": "text", "source": s, "source_field": None}
              for s, _ in SOURCES]
    cfg = {"run": {"name": f"bench_browse_{gb}gb", "output": str(d), "seed": 0}, "input": blocks,
           "stages": [{"use": s, "with": {}, "sources": None} for s in STAGES[1:]], "engine": {"kind": "local", "options": {}},
           "limits": {"batch_rows": BATCH}}
    m = {"config": cfg, "stages": stages, "files": files, "inputs": inputs, "rules": {}, "hints": [], "status": "ok", "engine": "local",
         "corpusforge_version": "bench", "pyarrow_version": pa.__version__,
         "totals": {"records": docs + sum(quarantined.values()), "kept": alive, "quarantined": sum(quarantined.values())}}
    (d / "manifest.json").write_text(json.dumps(m, indent=1), encoding="utf-8")
    print()


def _get(url: str) -> tuple[float, int, bytes]:
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            body, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    return (time.perf_counter() - t) * 1000, status, body


def _term(corpus: str, lo: int, hi: int) -> str:
    """A 3-character CJK term that occurs lo..hi times in the corpus (rare in the run's texts)."""
    for i in range(1000, len(corpus), 9973):
        w = corpus[i:i + 3]
        if re.fullmatch(r"[\u4e00-\u9fff]{3}", w) and lo <= corpus.count(w) <= hi:
            return w
    raise SystemExit("no term found")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    d = Path(tempfile.gettempdir()) / f"corpusforge-bench-browse-{args.gb:g}gb"
    if not (d / "manifest.json").exists():
        t = time.perf_counter()
        synthesize(d, args.gb)
        print(f"synthesized in {time.perf_counter() - t:.0f} s")
    m = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    gb = sum((d / f["path"]).stat().st_size for f in m["files"]) / 1e9
    docs = m["totals"]["records"]
    kept_files = [f for f in m["files"] if f["kind"] == "kept"]
    n_rg = {k: sum(pq.ParquetFile(d / f["path"]).metadata.num_row_groups for f in m["files"] if f["kind"] == k) for k in ("kept", "rejects")}
    print(f"run: {d} — {gb:.2f} GB of Parquet, {docs:,} records ({m['totals']['kept']:,} kept), {len(kept_files)} parts, "
          f"row groups: kept {n_rg['kept']:,}, rejects {n_rg['rejects']:,}")
    # floor: pyarrow reading one kept row group's display columns
    pf = pq.ParquetFile(d / kept_files[len(kept_files) // 2]["path"])
    floor = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        pf.read_row_group(1, columns=["id", "source", "text"])
        floor.append((time.perf_counter() - t) * 1000)
    last = pq.read_table(d / kept_files[-1]["path"], columns=["id"])["id"]
    late_id = last[len(last) - 1].as_py()  # the last kept row: an id scan reads every row group before it
    corpus = _corpus()
    common, rare = "中国", _term(corpus, 3, 6)
    err = open(os.path.join(tempfile.gettempdir(), "bench_browse_server.log"), "w")
    t = time.perf_counter()
    srv = subprocess.Popen([sys.executable, "-m", "corpusforge", "report", "serve", str(d), "--port", "0", "--eval-samples", "3"],
                           cwd=str(ROOT), stdout=subprocess.PIPE, stderr=err, text=True)
    line = srv.stdout.readline()
    mm = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not mm:
        srv.kill()
        raise SystemExit(f"server did not start: {line!r}")
    base = f"http://127.0.0.1:{mm.group(1)}"
    print(f"server ready in {time.perf_counter() - t:.0f} s (collects the report once at start; not timed)")
    rows = []
    try:
        ms, status, _ = _get(base + "/browse?table=kept")
        print(f"first request after start (every kept footer read and cached): {ms:.0f} ms")

        def case(name, path, page=True, expect=200):
            lat = []
            for _ in range(args.repeats):
                ms, status, body = _get(base + path)
                if status != expect:
                    raise SystemExit(f"{path}: HTTP {status}: {body[-300:]!r}")
                lat.append(ms)
            summary = re.search(rb'<p class="summary"[^>]*>([^<]*)</p>', body)
            scan = re.search(rb'row groups read ([\d,]+), skipped by their statistics ([\d,]+)', body)
            note = (summary.group(1).decode() if summary else "") + (f"; row groups read {scan.group(1).decode()}, skipped {scan.group(2).decode()}" if scan else "")
            rows.append((name, statistics.median(lat), max(lat), page))
            print(f"{name:<58} p50 {statistics.median(lat):8.1f} ms  max {max(lat):8.1f} ms   {note}")
            return body

        case("floor: HTTP round trip of a one-line 400 page", "/browse?table=nope", page=False, expect=400)
        print(f"{'floor: pyarrow read of one kept row group (id, source, text)':<58} p50 {statistics.median(floor):8.1f} ms  max {max(floor):8.1f} ms")
        case("kept, first page", "/browse?table=kept")
        deep = m["totals"]["kept"] // 50
        case(f"kept, deep page ({deep:,}: rows {deep * 50 - 49:,}-{deep * 50:,})", f"/browse?table=kept&page={deep}")
        case("rejects stage+reason (pangu_rules:too_short), first page", "/browse?table=rejects&stage=pangu_rules&reason=pangu_rules:too_short")
        case("rejects stage+reason, deep page 500 (by number)", "/browse?table=rejects&stage=pangu_rules&reason=pangu_rules:too_short&page=500")
        case("kept source=news, first page", "/browse?table=kept&source=news")
        case("kept source=news, page 100 (by number)", "/browse?table=kept&source=news&page=100")
        case("kept score pangu_rules__zh_ratio in [0.95, 0.951], first page", "/browse?table=kept&score=pangu_rules__zh_ratio&min=0.95&max=0.951")
        case("rejects score pangu_rules__ad_density >= 0.999, first page", "/browse?table=rejects&score=pangu_rules__ad_density&min=0.999")
        case("kept id lookup (the last kept row: scans every id)", f"/browse?table=kept&id={late_id}")
        case(f"kept substring {common!r} (common), first page", "/browse?table=kept&q=" + urllib.parse.quote(common))
        b = case(f"kept substring {rare!r} (rare), first page", "/browse?table=kept&q=" + urllib.parse.quote(rare))
        nxt = re.search(rb'<a class="next" href="([^"]+)"', b)
        if nxt:
            case(f"kept substring {rare!r}, page 2 by its next link (cursor)", nxt.group(1).decode().replace("&amp;", "&"))
        case(f"kept substring {rare!r}, page 5 by number (rescans)", "/browse?table=kept&page=5&q=" + urllib.parse.quote(rare))
        absent = "无此词组合"
        case(f"kept substring {absent!r} (in no document), first page", "/browse?table=kept&q=" + urllib.parse.quote(absent))
        t, n, path = time.perf_counter(), 0, "/browse?table=kept&q=" + urllib.parse.quote(absent)
        while path:
            _, _, body = _get(base + path)
            n += 1
            nxt = re.search(rb'<a class="next" href="([^"]+)"', body)
            path = nxt.group(1).decode().replace("&amp;", "&") if nxt else None
        print(f"{'  ... its whole-table scan, by following search-on links':<58} {(time.perf_counter() - t) * 1000:8.0f} ms in {n} requests "
              f"(the text of every kept row group, {n_rg['kept']:,})")
        case("quarantine, first page", "/browse?table=quarantine")
        body = _get(base + f"/browse?table=kept&page={min(5000, m['totals']['kept'] // 50)}")[2]
        link = re.search(rb'<a class="open" href="([^"]+)"', body).group(1).decode().replace("&amp;", "&")
        case("/doc open from a list link (id + position)", link, page=False)
        case("/doc by id only (the last kept row: scans every id)", f"/doc?table=kept&id={late_id}", page=False)
    finally:
        srv.terminate()
        srv.wait()
        err.close()
    worst = max((r for r in rows if r[3]), key=lambda r: r[1])
    slow = [r[0] for r in rows if r[1] >= 300]
    print("target: p50 < 300 ms per page of 50 rows. " + (f"Over it: {'; '.join(slow)}." if slow else "All pages under it.")
          + " A substring filter has no statistics to skip by: a page's scan reads text until 51 hits are found or its "
          "0.25 s budget is spent, then answers with the rows found so far (fewer than 50 for a rare term) and a "
          "'search on' link that resumes at its cursor; a page by number rescans from the first row.")
    print(f"worst page p50 {worst[1]:.0f} ms ({worst[0]}; target < 300 ms) on a {gb:.2f} GB run ({docs:,} docs)")


if __name__ == "__main__":
    main()
