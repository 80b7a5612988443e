"""Report generation on a 1M-document run: peak RSS and seconds of `build_report`, against a naive
read of the same tables with pandas (`pd.read_parquet` of every kept and rejects file), measured in
the same run, each in its own child process (peak RSS from os.wait4 of that child).

Data: a synthetic run directory in the real schema (kept/ and rejects/ parts, manifest.json whose
per-stage counts balance), texts cut from the shared real Chinese text (Wikipedia, Lu Xun, Common
Crawl) at varied offsets and lengths, ids from blake2b of the row number. 40 % kept, 60 % rejected
by pangu_rules (4 reasons), sensitive_words, dedup_exact and dedup_minhash (clusters of 2–6 pointing
at kept documents). Cached under bench/_data/ (git-ignored).

    python bench/bench_report.py               # 1,000,000 documents
    python bench/bench_report.py --docs 100000 # quick

`--serve`: `corpusforge report serve` on the same synthetic run against stdlib `http.server` serving
the same rendered page as a static file, each in its own child process on 127.0.0.1; a burst of
--requests concurrent GETs of `/` (one client thread each, released together; 30 s client timeout,
a request that fails or times out counts as not answered and as 30 s in the percentiles). The
corpusforge server is fresh, so its first burst includes the one render of the page; a second
burst is served from its cache. The static baseline is run twice: `python -m http.server` as
shipped (listen backlog 5) and the same stdlib handler with a 512 backlog (what the headline uses).

    python bench/bench_report.py --serve --docs 100000

The last line is the headline ratio."""

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
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corpusforge.rules_files import sha256_file  # noqa: E402
from corpusforge.schema import DOC_SCHEMA, META_TYPE, PREVIEW_CHARS, REJECT_SCHEMA  # noqa: E402

SHARED = Path(os.environ.get("CORPUSFORGE_SHARED", ROOT.parent / "shared")) / "data"
PART_ROWS = 50_000
KEPT_SCORES = {"clean__chars_removed": pa.int64(), "pangu_rules__chars": pa.int64(), "pangu_rules__zh_ratio": pa.float64(),
               "pangu_rules__ad_hits": pa.int64(), "pangu_rules__ad_density": pa.float64(), "sensitive_words__hits": pa.int64()}
REASONS = [("pangu_rules", "pangu_rules:low_zh_ratio", 0.10), ("pangu_rules", "pangu_rules:too_short", 0.06),
           ("pangu_rules", "pangu_rules:ads", 0.04), ("pangu_rules", "pangu_rules:navigation", 0.02),
           ("sensitive_words", "sensitive_words:sensitive_words", 0.02), ("dedup_exact", "dedup_exact:exact_duplicate", 0.08),
           ("dedup_minhash", "dedup_minhash:near_duplicate", 0.28)]
STAGES = ["ingest", "clean", "pangu_rules", "sensitive_words", "dedup_exact", "dedup_minhash"]
SOURCES = ["web", "luxun", "zhwiki"]


def _corpus() -> str:
    texts = []
    for f in ("prose/zhwiki_articles_100.jsonl", "prose/luxun_fiction_essays.jsonl", "web/commoncrawl_2021-43_zh_100docs.jsonl"):
        texts += [json.loads(x)["text"] for x in (SHARED / f).open(encoding="utf-8")]
    return "\n".join(texts)


def _meta(n: int, start: int) -> pa.Array:
    keys = pa.array(["_cf_file", "_cf_line", "_cf_offset"] * n)
    vals = pa.array([v for i in range(start, start + n) for v in ("synthetic.jsonl", str(i + 1), str(i * 700))])
    return pa.MapArray.from_arrays(pa.array(np.arange(0, 3 * n + 1, 3, dtype=np.int32)), keys, vals, type=META_TYPE)


def synthesize(d: Path, docs: int) -> None:
    rng = np.random.default_rng(7)
    corpus = _corpus()
    ids = [hashlib.blake2b(f"doc{i}".encode(), digest_size=10).hexdigest() for i in range(docs)]
    kind = rng.choice(len(REASONS) + 1, size=docs, p=[0.40] + [p for _, _, p in REASONS])  # 0 = kept
    kept_idx = np.flatnonzero(kind == 0)
    starts = rng.integers(0, len(corpus) - 4000, size=docs)
    lens = rng.integers(150, 1500, size=docs)
    src = rng.integers(0, len(SOURCES), size=docs)
    files = []
    for sub in ("kept", "rejects"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    # kept
    for p, lo in enumerate(range(0, len(kept_idx), PART_ROWS)):
        rows = kept_idx[lo:lo + PART_ROWS]
        n = len(rows)
        cols = {"id": pa.array([ids[i] for i in rows]), "source": pa.array([SOURCES[s] for s in src[rows]]),
                "text": pa.array([corpus[starts[i]:starts[i] + lens[i]] for i in rows]), "meta": _meta(n, lo)}
        cols["clean__chars_removed"] = pa.array(rng.poisson(3, n), pa.int64())
        cols["pangu_rules__chars"] = pa.array(lens[rows], pa.int64())
        cols["pangu_rules__zh_ratio"] = pa.array(rng.uniform(0.6, 1.0, n))
        cols["pangu_rules__ad_hits"] = pa.array(rng.poisson(0.2, n), pa.int64())
        cols["pangu_rules__ad_density"] = pa.array(rng.uniform(0, 1, n))
        cols["sensitive_words__hits"] = pa.array(rng.poisson(0.1, n), pa.int64())
        schema = DOC_SCHEMA
        for c, t in KEPT_SCORES.items():
            schema = schema.append(pa.field(c, t))
        path = d / "kept" / f"part-{p:05d}.parquet"
        pq.write_table(pa.table(cols, schema=schema), path, compression="zstd")
        files.append({"kind": "kept", "path": f"kept/part-{p:05d}.parquet", "rows": n})
    # rejects: scores of every stage the document passed, in the real map layout
    rej_idx = np.flatnonzero(kind > 0)
    for p, lo in enumerate(range(0, len(rej_idx), PART_ROWS)):
        rows = rej_idx[lo:lo + PART_ROWS]
        n = len(rows)
        st = [REASONS[k - 1][0] for k in kind[rows]]
        keys, vals, offs = [], [], [0]
        for j, i in enumerate(rows):
            ks = ["clean__chars_removed", "pangu_rules__chars", "pangu_rules__zh_ratio", "pangu_rules__ad_hits", "pangu_rules__ad_density"]
            if STAGES.index(st[j]) > STAGES.index("pangu_rules"):
                ks.append("sensitive_words__hits")
            keys += ks
            vals += [3.0, float(lens[i]), float(rng.uniform(0.2, 1.0)), float(rng.poisson(1)), float(rng.uniform(0, 5)), 0.0][:len(ks)]
            offs.append(len(keys))
        scores = pa.MapArray.from_arrays(pa.array(offs, pa.int32()), pa.array(keys), pa.array(vals, pa.float64()),
                                         type=REJECT_SCHEMA.field("scores").type)
        dedup = np.array([s.startswith("dedup") for s in st])
        reps = kept_idx[rng.integers(0, max(len(kept_idx) // 3, 1), size=n)]  # ~clusters of 2–6 on a third of the kept docs
        dup = pa.array([ids[r] if dd else None for r, dd in zip(reps, dedup)], pa.string())
        cols = {"id": pa.array([ids[i] for i in rows]), "source": pa.array([SOURCES[s] for s in src[rows]]), "stage": pa.array(st),
                "reason": pa.array([REASONS[k - 1][1] for k in kind[rows]]), "scores": scores, "duplicate_of": dup,
                "text_preview": pa.array([corpus[starts[i]:starts[i] + min(lens[i], PREVIEW_CHARS)] for i in rows]), "meta": _meta(n, lo)}
        path = d / "rejects" / f"part-{p:05d}.parquet"
        pq.write_table(pa.table(cols, schema=REJECT_SCHEMA), path, compression="zstd")
        files.append({"kind": "rejects", "path": f"rejects/part-{p:05d}.parquet", "rows": n})
    for f in files:
        f["sha256"] = sha256_file(str(d / f["path"]))
    # balanced per-stage counts
    stages, alive = [], docs
    for name in STAGES:
        dropped = {r: int((kind == k + 1).sum()) for k, (s, r, _) in enumerate(REASONS) if s == name}
        stages.append({"name": name, "key": f"{name}@1", "in": alive, "kept": alive - sum(dropped.values()), "dropped": dropped, "quarantined": {}})
        alive -= sum(dropped.values())
    cfg = {"run": {"name": "bench_1m", "output": str(d), "seed": 0},
           "input": [{"format": "jsonl", "paths": [str(d / "synthetic.jsonl")], "text_field": "text", "source": "web"}],
           "stages": [{"use": s, "with": {}} for s in STAGES[1:]], "engine": {"kind": "local", "options": {}}}
    m = {"config": cfg, "stages": stages, "files": files, "inputs": [], "rules": {}, "status": "ok", "engine": "local",
         "totals": {"records": docs, "kept": alive, "quarantined": 0}}
    (d / "manifest.json").write_text(json.dumps(m, indent=1), encoding="utf-8")


def _child(code: str) -> tuple[float, float, str]:
    """(seconds, peak RSS MB, stdout) of a fresh interpreter running `code`. Peak RSS is the child's
    VmHWM (reset by exec; ru_maxrss would carry this parent's high-water mark across fork + exec)."""
    t = time.perf_counter()
    hwm = "\nprint(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"
    p = subprocess.run([sys.executable, "-c", code + hwm], stdout=subprocess.PIPE, cwd=str(ROOT), check=False)
    if p.returncode:
        raise SystemExit(f"child failed ({p.returncode}): {code}")
    *out, kb = p.stdout.decode().strip().splitlines()
    return time.perf_counter() - t, int(kb) / 1024, "\n".join(out)


CLIENT_TIMEOUT = 30.0  # the client timeout
STATIC_BACKLOG = """
import functools, http.server, sys
class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass
srv = S(("127.0.0.1", 0), functools.partial(H, directory=sys.argv[1]))
print("Serving HTTP on 127.0.0.1 port", srv.server_address[1], flush=True)
srv.serve_forever()
"""


def _start(cmd: list[str], pattern: str, stderr) -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=stderr, text=True)
    line = p.stdout.readline()
    m = re.search(pattern, line)
    if not m:
        p.kill()
        raise SystemExit(f"server did not start: {cmd}: {line!r}")
    return p, int(m.group(1))


def _burst(url: str, n: int) -> tuple[list[float], int, set[bytes]]:
    """n concurrent GETs released together: (latencies in s, answered count, distinct bodies)."""
    gate = threading.Barrier(n)

    def one(_):
        gate.wait()
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=CLIENT_TIMEOUT) as r:
                body = r.read()
                ok = r.status == 200
        except Exception:  # noqa: BLE001 - a refused, reset or timed-out request is "not answered"
            return CLIENT_TIMEOUT, False, None
        dt = time.perf_counter() - t
        return (dt, True, body) if ok and dt <= CLIENT_TIMEOUT else (CLIENT_TIMEOUT, False, None)

    with ThreadPoolExecutor(max_workers=n) as pool:
        res = list(pool.map(one, range(n)))
    return [r[0] for r in res], sum(r[1] for r in res), {r[2] for r in res if r[1]}


def _stats(lat: list[float]) -> tuple[float, float]:
    s = sorted(lat)
    return statistics.median(s), s[max(0, -(-len(s) * 99 // 100) - 1)]


def serve_bench(d: Path, docs: int, n: int) -> None:
    rows = []

    def line(name, lat, answered, bodies):
        med, p99 = _stats(lat)
        rows.append((name, med, p99, answered))
        print(f"{name:<52} median {med:7.3f} s  p99 {p99:7.3f} s  answered {answered}/{n}  distinct bodies {len(bodies)}")
        return med, p99

    with tempfile.TemporaryDirectory() as tmp:
        errf = open(os.path.join(tmp, "stderr.txt"), "w+")
        t = time.perf_counter()
        cf, port = _start([sys.executable, "-m", "corpusforge", "report", "serve", str(d), "--port", "0"], r"http://127\.0\.0\.1:(\d+)/", errf)
        print(f"corpusforge report serve: ready in {time.perf_counter() - t:.1f} s (tables collected at start)")
        try:
            cold = _burst(f"http://127.0.0.1:{port}/", n)
            warm = _burst(f"http://127.0.0.1:{port}/", n)
        finally:
            cf.terminate()
            cf.wait()
        errf.seek(0)
        err = errf.read()
        errf.close()
        body = next(iter(cold[2] or warm[2]), b"")
        print(f"page: {len(body) / 1e6:.2f} MB of HTML; {n} concurrent GETs of / per burst")
        cf_cold = line("corpusforge report serve, fresh (incl. the render)", *cold)
        line("corpusforge report serve, cached", *warm)
        print(f"corpusforge stderr: {err.count('Traceback')} tracebacks, {len(err.splitlines())} lines")
        if not body:
            raise SystemExit("corpusforge answered nothing")
        static_dir = Path(tmp) / "static"
        static_dir.mkdir()
        (static_dir / "index.html").write_bytes(body)  # the same bytes, served as a file
        st, port = _start([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(static_dir)],
                          r"port (\d+)", subprocess.DEVNULL)
        try:
            line("stdlib python -m http.server (backlog 5), static", *_burst(f"http://127.0.0.1:{port}/index.html", n))
        finally:
            st.terminate()
            st.wait()
        st, port = _start([sys.executable, "-c", STATIC_BACKLOG, str(static_dir)], r"port (\d+)", subprocess.DEVNULL)
        try:
            base = line("stdlib http.server (backlog 512), static", *_burst(f"http://127.0.0.1:{port}/index.html", n))
        finally:
            st.terminate()
            st.wait()
    print("targets: all answered, median < 1 s, p99 < 5 s")
    print(f"headline: {docs:,}-document run, {len(body) / 1e6:.2f} MB page, {n} concurrent GETs: corpusforge report serve (fresh) "
          f"median {cf_cold[0]:.3f} s / static {base[0]:.3f} s = {cf_cold[0] / base[0]:.1f}x, p99 {cf_cold[1]:.3f} s / {base[1]:.3f} s "
          f"= {cf_cold[1] / base[1]:.1f}x; answered {rows[0][3]}/{n} vs {rows[3][3]}/{n}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--serve", action="store_true", help="benchmark `corpusforge report serve` against a static stdlib http.server")
    ap.add_argument("--requests", type=int, default=200, help="concurrent requests per burst (--serve)")
    args = ap.parse_args()
    d = ROOT / "bench" / "_data" / f"report_{args.docs}"
    if not (d / "manifest.json").exists():
        t = time.perf_counter()
        synthesize(d, args.docs)
        print(f"synthesized {args.docs:,} documents in {time.perf_counter() - t:.0f} s")
    mb = sum(f.stat().st_size for f in d.rglob("*.parquet")) / 1e6
    print(f"run: {args.docs:,} documents, {mb:.0f} MB of Parquet (kept + rejects)")
    if args.serve:
        return serve_bench(d, args.docs, args.requests)
    out = d.parent / f"report_{args.docs}.html"
    base_s, base_mb, _ = _child("import pyarrow, pandas, corpusforge.report.build")
    rep_s, rep_mb, _ = _child(f"from corpusforge.report.build import build_report; build_report([{str(d)!r}], {str(out)!r})")
    naive = (f"import glob, pandas as pd; fs = sorted(glob.glob({str(d)!r} + '/kept/*.parquet')) + sorted(glob.glob({str(d)!r} + '/rejects/*.parquet'));"
             "t = [pd.read_parquet(f) for f in fs]; print(sum(len(x) for x in t))")
    nv_s, nv_mb, rows = _child(naive)
    assert int(rows) == args.docs
    print(f"interpreter + imports only:        {base_s:6.1f} s  peak RSS {base_mb:7.0f} MB")
    print(f"corpusforge report (HTML {out.stat().st_size / 1e6:.1f} MB): {rep_s:6.1f} s  peak RSS {rep_mb:7.0f} MB   (targets: < 60 s, <= 1024 MB)")
    print(f"naive pandas read of the tables:   {nv_s:6.1f} s  peak RSS {nv_mb:7.0f} MB   (reads only; computes nothing)")
    print(f"headline: report peak RSS {rep_mb:.0f} MB vs naive pandas read {nv_mb:.0f} MB = {nv_mb / rep_mb:.1f}x less memory, "
          f"{rep_s:.1f} s for {args.docs:,} documents")


if __name__ == "__main__":
    main()
