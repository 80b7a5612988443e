"""Near-duplicate dedup benchmark: corpusforge dedup_minhash (local engine primitives) against
datasketch MinHash + MinHashLSH and pyspark.ml.feature.MinHashLSH + approxSimilarityJoin.

Data: a synthetic corpus assembled from the real shared Chinese text (Wikipedia, Lu Xun, Common Crawl,
the neardup pool), split into sentences and recombined into ~2,000-character documents; 12% of the
documents are planted near-duplicates of another one at Jaccard levels ≈ 0.95 / 0.85 / 0.7 / 0.5
(sentence replacement). Precision and recall are pair-level on an evaluation set of every planted pair
plus as many random pairs, labelled by the exact char-5-gram Jaccard ≥ threshold.

Each system runs in a child process (wall time and peak RSS of that process tree). Throughput is MB of
UTF-8 text per second on one core. Peers that are too slow run on a prefix of the same corpus.

    python bench/bench_dedup.py                 # 100 MB and 200 MB for corpusforge, 16 MB for datasketch
    python bench/bench_dedup.py --mb 20 --peer-mb 4 --spark-ml-mb 0.5,1   # quick

The last line is the headline ratio.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpusforge.algorithms.minhash import jaccard_pairs, shingles  # noqa: E402

SHARED = Path(os.environ.get("CORPUSFORGE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
THRESHOLD, NUM_PERM, NGRAM = 0.8, 128, 5
LEVELS = {0.95: 0.026, 0.85: 0.081, 0.7: 0.176, 0.5: 0.333}  # target Jaccard -> fraction of sentences replaced


# ------------------------------------------------------------------------------------------- corpus


def sentences() -> list[str]:
    files = ["prose/zhwiki_articles_100.jsonl", "prose/luxun_fiction_essays.jsonl",
             "web/commoncrawl_2021-43_zh_100docs.jsonl", "neardup/zhwiki_versions_pool.jsonl"]
    out: set[str] = set()
    for f in files:
        for line in open(SHARED / f, encoding="utf-8"):
            for s in re.split(r"(?<=[。！？!?\n])", json.loads(line)["text"]):
                s = s.strip()
                if len(s) >= 8:
                    out.add(s)
    return sorted(out)


def build(mb: float, out_dir: Path, seed: int = 7, file_mb: float = 1.0):
    """Writes Parquet files (id, source, text, _cf_part) and returns (files, eval pairs [(a, b)], sizes)."""
    rnd = random.Random(seed)
    sent = sentences()
    docs: list[str] = []
    planted: list[tuple[int, int]] = []
    target = mb * 2**20
    size = 0
    files, part, buf, buf_bytes = [], 0, [], 0

    def flush():
        nonlocal part, buf, buf_bytes
        if buf:
            ids = [f"d{i:09d}" for i, _ in buf]
            p = out_dir / f"part-{part:05d}.parquet"
            pq.write_table(pa.table({"id": ids, "source": ["bench"] * len(buf), "text": [t for _, t in buf],
                                     "_cf_part": pa.array([part] * len(buf), pa.int32())}), p)
            files.append(str(p))
            part, buf, buf_bytes = part + 1, [], 0

    while size < target:
        i = len(docs)
        if i > 50 and rnd.random() < 0.12:
            base = rnd.randrange(i)
            src = docs[base].split("\u2063")
            frac = rnd.choice(list(LEVELS.values()))
            new = [rnd.choice(sent) if rnd.random() < frac else s for s in src]
            planted.append((base, i))
            text = "\u2063".join(new)
        else:
            text = "\u2063".join(rnd.choice(sent) for _ in range(rnd.randint(25, 60)))
        docs.append(text)
        b = len(text.encode("utf-8"))
        size += b
        buf.append((i, text.replace("\u2063", "")))
        buf_bytes += b
        if buf_bytes >= file_mb * 2**20:
            flush()
    flush()
    docs = [d.replace("\u2063", "") for d in docs]
    rnd2 = random.Random(seed + 1)
    randpairs = [(rnd2.randrange(len(docs)), rnd2.randrange(len(docs))) for _ in range(len(planted))]
    pairs = [(a, b) for a, b in planted + randpairs if a != b]
    jac = jaccard_pairs([docs[a] for a, _ in pairs], [docs[b] for _, b in pairs], NGRAM)
    return files, docs, pairs, jac, size


def prefix(files: list[str], mb: float) -> tuple[list[str], int, int]:
    """The first files holding ≥ mb of text: (files, n docs, bytes)."""
    out, n, size = [], 0, 0
    for f in files:
        if size >= mb * 2**20:
            break
        t = pq.read_table(f, columns=["text"])
        out.append(f)
        n += t.num_rows
        size += sum(len(x.encode("utf-8")) for x in t.column("text").to_pylist())
    return out, n, size


def scores(pred_same, pairs, jac, ndocs):
    """Pair precision/recall on the evaluation pairs that lie inside the first ndocs documents."""
    tp = fp = fn = 0
    for (a, b), j in zip(pairs, jac):
        if a >= ndocs or b >= ndocs:
            continue
        p, t = pred_same(a, b), j >= THRESHOLD
        tp += p and t
        fp += p and not t
        fn += t and not p
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), tp + fn


# ------------------------------------------------------------------------------------------ systems


def run_corpusforge(files, workdir, workers):
    from corpusforge.engines.primitives import LocalPrimitives
    from corpusforge.stages.dedup import DedupMinhash

    t0 = time.time()
    eng = LocalPrimitives(workdir, workers=workers, batch_rows=2048)
    st = DedupMinhash(DedupMinhash.Params(threshold=THRESHOLD, num_perm=NUM_PERM, ngram=NGRAM))
    dec = eng.read_table(st.run(eng, eng.dataset(files)))
    rep = dict(zip(dec.column("id").to_pylist(), dec.column("duplicate_of").to_pylist()))
    return time.time() - t0, rep, {"bands_rows": st.band_rows()}


def run_datasketch(files):
    from datasketch import MinHash, MinHashLSH

    t0 = time.time()
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    sigs = {}
    for f in files:
        t = pq.read_table(f, columns=["id", "text"])
        for i, text in zip(t.column("id").to_pylist(), t.column("text").to_pylist()):
            m = MinHash(num_perm=NUM_PERM)
            m.update_batch([s.encode("utf-8") for s in shingles(text, NGRAM)])
            lsh.insert(i, m)
            sigs[i] = m
    cand = set()
    for i, m in sigs.items():
        for j in lsh.query(m):
            if j != i:
                cand.add((min(i, j), max(i, j)))
    return time.time() - t0, cand, {"bands_rows": (lsh.b, lsh.r)}


def run_spark_ml(files):
    from pyspark.ml.feature import HashingTF, MinHashLSH
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, StringType

    spark = (SparkSession.builder.master("local[2]").appName("bench_dedup").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "4").config("spark.ui.showConsoleProgress", "false").config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    rows = []
    for f in files:
        t = pq.read_table(f, columns=["id", "text"])
        rows += [(i, shingles(x, NGRAM)) for i, x in zip(t.column("id").to_pylist(), t.column("text").to_pylist())]
    t0 = time.time()  # Spark start-up and shingling excluded: only the LSH work is timed
    df = spark.createDataFrame(rows, ["id", "sh"]).withColumn("sh", F.col("sh").cast(ArrayType(StringType())))
    df = HashingTF(inputCol="sh", outputCol="features", numFeatures=1 << 22, binary=True).transform(df)
    df = df.filter(F.size("sh") > 0)
    model = MinHashLSH(inputCol="features", outputCol="hashes", numHashTables=5, seed=1).fit(df)
    pairs = model.approxSimilarityJoin(df, df, 1 - THRESHOLD, distCol="dist").select(
        F.col("datasetA.id").alias("a"), F.col("datasetB.id").alias("b")).filter("a < b").collect()
    sec = time.time() - t0
    spark.stop()  # the JVM's RSS is not in this process tree's rusage: Spark's peak RSS is under-reported
    return sec, {(r.a, r.b) for r in pairs}, {"numHashTables": 5}


def _child(target, args, q):
    res = target(*args)
    # VmHWM: this process's own peak (ru_maxrss would carry the parent's peak over fork+exec)
    hwm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:"))
    q.put((*res, max(hwm, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024))


def run_signatures(files, mode):
    """Signatures only, one core: 'numpy' (whole batch), 'loop' (same values, a Python loop per shingle as
    datasketch's MinHash.update does), 'datasketch' (MinHash.update_batch with its default SHA-1)."""
    from datasketch import MinHash

    from corpusforge.algorithms.minhash import MinHasher, shingle_hash32

    texts = [x for f in files for x in pq.read_table(f, columns=["text"]).column("text").to_pylist()]
    t0 = time.time()
    if mode == "numpy":
        mh = MinHasher(NUM_PERM, 1, NGRAM)
        for o in range(0, len(texts), 2048):
            mh.signatures(texts[o:o + 2048])
    elif mode == "loop":
        for t in texts:
            m = MinHash(NUM_PERM, 1, hashfunc=shingle_hash32)
            for sh in shingles(t, NGRAM):
                m.update(sh)
    else:
        for t in texts:
            MinHash(NUM_PERM, 1).update_batch([sh.encode("utf-8") for sh in shingles(t, NGRAM)])
    return time.time() - t0, None, {}


def measure(target, *args, timeout: float | None = None):
    """Runs target in a child process; returns (seconds, result, info, peak RSS MB of that process and its
    workers) or None on timeout."""
    ctx = mp.get_context("spawn")  # a clean child: a forked one would count the parent's corpus in its RSS
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(target, args, q))
    p.start()
    try:
        res = q.get(timeout=timeout)
    except Exception:
        p.kill()
        p.join()
        return None
    p.join()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=200, help="largest corpus for corpusforge (MB of text)")
    ap.add_argument("--peer-mb", type=float, default=16, help="corpus prefix for datasketch")
    ap.add_argument("--spark-ml-mb", default="0.5,1,2", help="prefix sizes for Spark ML MinHashLSH (stops when one exceeds --cap)")
    ap.add_argument("--cap", type=float, default=300, help="seconds after which a peer run is abandoned")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_dedup-"))
    try:
        t0 = time.time()
        (tmp / "corpus").mkdir()
        files, docs, pairs, jac, size = build(args.mb, tmp / "corpus")
        print(f"corpus: {size / 2**20:.1f} MB of text, {len(docs)} docs, {len(files)} Parquet files, "
              f"{sum(j >= THRESHOLD for j in jac)} true pairs (J >= {THRESHOLD}) among {len(pairs)} evaluation pairs "
              f"(built in {time.time() - t0:.0f}s); 2 cores shared")
        ndocs = len(docs)
        del docs
        print(f"{'system':<36}{'MB':>7}{'docs':>8}{'wall s':>9}{'MB/s':>8}{'peak RSS MB':>13}{'prec':>7}{'recall':>8}")
        results = {}

        def show(name, mb_, n, sec, rss, pr, rc):
            print(f"{name:<36}{mb_:>7.1f}{n:>8}{sec:>9.1f}{mb_ / sec:>8.2f}{rss:>13.0f}{pr:>7.3f}{rc:>8.3f}", flush=True)

        id_of = lambda i: f"d{i:09d}"  # noqa: E731
        for mb in sorted({args.mb / 2, args.mb}):
            fs, n, sz = prefix(files, mb)
            r = measure(run_corpusforge, fs, str(tmp / f"cf-{mb}"), args.workers)
            sec, dec, info, rss = r
            rep = lambda i: dec.get(id_of(i), id_of(i))  # noqa: E731
            pr, rc, _ = scores(lambda a, b: rep(a) == rep(b), pairs, jac, n)
            show(f"corpusforge local (w={args.workers}) b,r={info['bands_rows']}", sz / 2**20, n, sec, rss, pr, rc)
            results["cf"] = sz / 2**20 / sec / args.workers
            shutil.rmtree(tmp / f"cf-{mb}", ignore_errors=True)

        fs, n, sz = prefix(files, args.peer_mb)
        r = measure(run_datasketch, fs, timeout=args.cap)
        if r is None:
            print(f"datasketch: no result within {args.cap:.0f}s on {sz / 2**20:.1f} MB")
        else:
            sec, cand, info, rss = r
            pr, rc, _ = scores(lambda a, b: (min(id_of(a), id_of(b)), max(id_of(a), id_of(b))) in cand, pairs, jac, n)
            show(f"datasketch MinHashLSH b,r={info['bands_rows']}", sz / 2**20, n, sec, rss, pr, rc)
            results["ds"] = sz / 2**20 / sec

        for mb in [float(x) for x in args.spark_ml_mb.split(",") if x]:
            fs, n, sz = prefix(files, mb)
            r = measure(run_spark_ml, fs, timeout=args.cap + 60)
            if r is None:
                print(f"spark ML MinHashLSH: no result within {args.cap:.0f}s on {sz / 2**20:.1f} MB; larger sizes skipped")
                break
            sec, cand, info, rss = r
            pr, rc, _ = scores(lambda a, b: (min(id_of(a), id_of(b)), max(id_of(a), id_of(b))) in cand, pairs, jac, n)
            show("spark ML MinHashLSH local[2] t=5", sz / 2**20, n, sec, rss, pr, rc)
            results["sp"] = sz / 2**20 / sec / 2
            if sec > args.cap:
                print(f"spark ML MinHashLSH exceeded {args.cap:.0f}s at {sz / 2**20:.1f} MB; larger sizes skipped")
                break
        fs, n, sz = prefix(files, min(args.peer_mb, 4))
        sig = {}
        for mode in ("numpy", "loop", "datasketch"):
            sec = measure(run_signatures, fs, mode)[0]
            sig[mode] = sz / 2**20 / sec
            print(f"signatures only ({mode:<10}) {sz / 2**20:6.1f} MB {sec:7.1f} s {sig[mode]:7.2f} MB/s", flush=True)
        print(f"signatures: numpy over whole batches is {sig['numpy'] / sig['loop']:.0f}x a Python loop per shingle "
              f"and {sig['numpy'] / sig['datasketch']:.0f}x datasketch update_batch")
        print("datatrove: not installed in this environment; not measured")
        parts = []
        if "ds" in results:
            parts.append(f"{results['cf'] / results['ds']:.1f}x datasketch")
        if "sp" in results:
            parts.append(f"{results['cf'] / results['sp']:.0f}x Spark ML MinHashLSH")
        print(f"headline: corpusforge dedup_minhash per core is {' and '.join(parts) or 'n/a'} (MB/s per core, same corpus)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
