"""Near-duplicate dedup benchmark: corpusforge dedup_minhash (local engine, and Spark local[2]) against
datasketch MinHash + MinHashLSH, datatrove's four minhash steps and pyspark.ml.feature.MinHashLSH +
approxSimilarityJoin.

Data: a synthetic corpus assembled from the real shared Chinese text (Wikipedia, Lu Xun, Common Crawl,
the neardup pool), split into sentences and recombined into ~2,000-character documents; 12% of the
documents are planted near-duplicates of another one at Jaccard levels ≈ 0.95 / 0.85 / 0.7 / 0.5
(sentence replacement). Precision and recall are pair-level on an evaluation set of every planted pair
plus as many random pairs, labelled by the exact char-5-gram Jaccard ≥ threshold.

Each system runs in a child process. Peak RSS: the child's own peak, or the sampled sum over its process
tree (Spark: the JVM and its Python workers included); datatrove: ru_maxrss of its subprocess. Throughput
is MB of UTF-8 text per second per core used (Spark local[2]: 2 cores; the others: 1). Peers that are too
slow run on a prefix of the same corpus; corpusforge runs at two sizes to show peak RSS stays flat.

datatrove runs in its own virtualenv (default bench/_data/datatrove-venv, created with python3 -m venv +
pip when missing) as a subprocess on the same documents written as JSONL; see DATATROVE_DRIVER for how
it is configured (character 5-grams through a custom WordTokenizer, corpusforge's bands x rows).

    python bench/bench_dedup.py        # 400 MB (+100 MB) corpusforge local, 100 MB on Spark, 16 MB datasketch/datatrove
    python bench/bench_dedup.py --mb 20 --small-mb 5 --cf-spark-mb 5 --peer-mb 4 --spark-ml-mb 0.5,1   # quick

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
    from corpusforge.engines.local_primitives import LocalPrimitives
    from corpusforge.stages.dedup import DedupMinhash

    t0 = time.time()
    eng = LocalPrimitives(workdir, workers=workers, batch_rows=2048)
    st = DedupMinhash(DedupMinhash.Params(threshold=THRESHOLD, num_perm=NUM_PERM, ngram=NGRAM))
    dec = eng.read_table(st.run(eng, eng.dataset(files)).decisions)
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


def run_corpusforge_spark(files, workdir):
    """corpusforge dedup_minhash through SparkPrimitives on local[2]: the same stage, the same plan."""
    from corpusforge.engines.spark import SparkPrimitives, session
    from corpusforge.stages.dedup import DedupMinhash

    t_start = time.time()
    spark = session({"master": "local[2]", "spark.driver.memory": "2g", "spark.ui.enabled": "false",
                     "spark.ui.showConsoleProgress": "false"}, workers=2, app="bench_dedup corpusforge")
    spark.sparkContext.setLogLevel("ERROR")
    startup = time.time() - t_start
    t0 = time.time()  # Spark start-up excluded, as for the Spark ML line (reported separately)
    eng = SparkPrimitives(spark, workdir)
    st = DedupMinhash(DedupMinhash.Params(threshold=THRESHOLD, num_perm=NUM_PERM, ngram=NGRAM))
    dec = pa.Table.from_batches(list(eng.read(st.run(eng, eng.dataset(files)).decisions)))
    sec = time.time() - t0
    spark.stop()
    rep = dict(zip(dec.column("id").to_pylist(), dec.column("duplicate_of").to_pylist())) if dec.num_rows else {}
    return sec, rep, {"bands_rows": st.band_rows(), "startup": startup}


# datatrove's four minhash steps, run by the datatrove virtualenv's interpreter (datatrove is never imported
# by corpusforge or by this process). Configuration, closest to corpusforge's: datatrove's own text
# normalisation (simplify_text: lowercase, numbers -> 0, punctuation -> space, whitespace collapsed), then a
# custom WordTokenizer (datatrove's documented extension point: `language=` accepts a WordTokenizer) that
# returns the characters left after dropping spaces, so `n_grams=5` gives character 5-grams like
# corpusforge's shingles; xxhash64 shingle hashes (datatrove's default); bands x rows = corpusforge's
# (14 x 9 at 0.8, 126 permutations). No candidate verification (datatrove has none). One task, one worker
# for the per-document steps, num_buckets tasks (one worker) for the bucket step: one core throughout.
DATATROVE_DRIVER = r"""
import json, sys, time
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                              MinhashDedupFilter, MinhashDedupSignature)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.hashing import HashConfig
from datatrove.utils.word_tokenizers import WordTokenizer

class CharTokenizer(WordTokenizer):
    def word_tokenize(self, text):
        return [c for c in text if not c.isspace()]
    def sent_tokenize(self, text):
        return [text]
    def span_tokenize(self, text):
        return [(0, len(text))]

def ids_and_clusters(self, doc):
    return {"id": doc.id, "cluster": doc.metadata.get("minhash_cluster_id", -1)}

inp, work, bands, rows, ngram = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
cfg = MinhashConfig(n_grams=ngram, num_buckets=bands, hashes_per_bucket=rows, seed=1,
                    hash_config=HashConfig(precision=64, hash_fc="xxhash"))
tok = CharTokenizer()
steps = [
    ("signature", LocalPipelineExecutor([JsonlReader(inp, compression=None),
                                         MinhashDedupSignature(f"{work}/sigs", config=cfg, language=tok)],
                                        tasks=1, workers=1, logging_dir=f"{work}/logs/sigs")),
    ("buckets", LocalPipelineExecutor([MinhashDedupBuckets(f"{work}/sigs", f"{work}/buckets", config=cfg)],
                                      tasks=cfg.num_buckets, workers=1, logging_dir=f"{work}/logs/buckets")),
    ("cluster", LocalPipelineExecutor([MinhashDedupCluster(f"{work}/buckets", f"{work}/remove", config=cfg,
                                                           save_cluster_id=True)],
                                      tasks=1, workers=1, logging_dir=f"{work}/logs/cluster")),
    ("filter", LocalPipelineExecutor([JsonlReader(inp, compression=None),
                                      MinhashDedupFilter(f"{work}/remove", load_cluster_ids=True,
                                                         exclusion_writer=JsonlWriter(f"{work}/removed", compression=None,
                                                                                      adapter=ids_and_clusters)),
                                      JsonlWriter(f"{work}/kept", compression=None, adapter=ids_and_clusters)],
                                     tasks=1, workers=1, logging_dir=f"{work}/logs/filter")),
]
times = {}
t0 = time.time()
for name, ex in steps:
    t = time.time()
    ex.run()
    times[name] = round(time.time() - t, 2)
print("BENCH_RESULT " + json.dumps({"sec": time.time() - t0, "steps": times}))
"""


def datatrove_python(venv: Path) -> Path | None:
    """The datatrove virtualenv's interpreter, creating the venv (python3 -m venv + pip) when it is missing."""
    py = venv / "bin" / "python"
    if not py.exists():
        import subprocess

        print(f"creating {venv} (python3 -m venv; pip install datatrove 0.10.x and the xxhash, orjson, regex, tokenizers its minhash steps and JSONL reader import) ...", flush=True)
        try:
            subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
            subprocess.run([str(py), "-m", "pip", "install", "-q", "datatrove>=0.10,<0.11", "xxhash<4", "orjson", "regex", "tokenizers"], check=True)
        except (subprocess.CalledProcessError, OSError) as e:
            print(f"datatrove venv: {e}")
            return None
    return py


def run_datatrove(py, jsonl_dir, workdir, bands, rows):
    """datatrove in a subprocess: wall time of the four steps and that subprocess's peak RSS (RUSAGE_CHILDREN,
    read in a fresh child so no other process's peak is in it); clusters read back from its outputs."""
    import subprocess

    drv = Path(workdir) / "driver.py"
    Path(workdir).mkdir(parents=True, exist_ok=True)
    drv.write_text(DATATROVE_DRIVER)
    t0 = time.time()
    out = subprocess.run([str(py), str(drv), jsonl_dir, workdir, str(bands), str(rows), str(NGRAM)],
                         capture_output=True, text=True, env={**os.environ, "DATATROVE_COLORIZE_LOGS": "0"})
    wall = time.time() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if out.returncode != 0:
        raise RuntimeError(f"datatrove failed:\n{out.stderr[-3000:]}")
    res = json.loads(next(x for x in out.stdout.splitlines() if x.startswith("BENCH_RESULT "))[13:])
    cluster, removed = {}, set()
    for sub in ("kept", "removed"):
        for f in sorted((Path(workdir) / sub).glob("*")):
            for line in open(f, encoding="utf-8"):
                d = json.loads(line)
                if d["cluster"] != -1:
                    cluster[d["id"]] = d["cluster"]
                if sub == "removed":
                    removed.add(d["id"])
    # timed: the four steps inside the subprocess (its interpreter start and datatrove import excluded, as
    # corpusforge's imports are); the subprocess's whole wall time is reported alongside
    return res["sec"], (cluster, removed), {"steps": res["steps"], "wall": wall, "child_rss": rss}


def to_jsonl(files, out_dir: Path) -> str:
    """The same documents as JSONL (id, text) for datatrove's JsonlReader, one file, in corpus order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "corpus.jsonl", "w", encoding="utf-8") as w:
        for f in files:
            t = pq.read_table(f, columns=["id", "text"])
            for i, x in zip(t.column("id").to_pylist(), t.column("text").to_pylist()):
                w.write(json.dumps({"id": i, "text": x}, ensure_ascii=False) + "\n")
    return str(out_dir)


def _child(target, args, q):
    try:
        res = target(*args)
    except BaseException:
        import traceback

        q.put(("error", traceback.format_exc()))
        raise
    # VmHWM: this process's own peak (ru_maxrss would carry the parent's peak over fork+exec)
    hwm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:"))
    q.put((*res, max(hwm, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024))


def run_signatures(files, mode):
    """Signatures only, one core: 'numba' (the compiled kernels, the default), 'numpy' (whole-batch array
    steps, the fallback without numba), 'loop' (same values, a Python loop per shingle as datasketch's
    MinHash.update does), 'datasketch' (MinHash.update_batch with its default SHA-1)."""
    from datasketch import MinHash

    from corpusforge.algorithms import minhash as M
    from corpusforge.algorithms.minhash import MinHasher, shingle_hash32

    texts = [x for f in files for x in pq.read_table(f, columns=["text"]).column("text").to_pylist()]
    if mode == "numpy":
        M._numba_decoder = lambda: None  # this child process only
    mh = MinHasher(NUM_PERM, 1, NGRAM)
    mh.signatures(texts[:4], kernel=mode if mode in ("numba", "numpy") else "auto")  # JIT compile (cached) outside the timing
    t0 = time.time()
    if mode in ("numba", "numpy"):
        for o in range(0, len(texts), 2048):
            mh.signatures(texts[o:o + 2048], kernel=mode)
    elif mode == "loop":
        for t in texts:
            m = MinHash(NUM_PERM, 1, hashfunc=shingle_hash32)
            for sh in shingles(t, NGRAM):
                m.update(sh)
    else:
        for t in texts:
            MinHash(NUM_PERM, 1).update_batch([sh.encode("utf-8") for sh in shingles(t, NGRAM)])
    return time.time() - t0, None, {}


def _tree_rss_mb(root: int) -> float:
    """Summed RSS of root and all its descendants (the JVM and Spark's Python workers included)."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += kids.get(pid, [])
        try:
            total += int(open(f"/proc/{pid}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            pass
    return total / 2**20


def measure(target, *args, timeout: float | None = None):
    """Runs target in a child process; returns (seconds, result, info, peak RSS MB) or None on timeout. Peak RSS
    is the larger of the child's own peak (VmHWM, with its waited-for children's ru_maxrss) and the process
    tree's summed RSS sampled every 0.2 s (which is what counts Spark's JVM and its Python workers)."""
    import threading

    ctx = mp.get_context("spawn")  # a clean child: a forked one would count the parent's corpus in its RSS
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(target, args, q))
    p.start()
    peak, stop = [0.0], threading.Event()

    def sample():
        while not stop.wait(0.2):
            peak[0] = max(peak[0], _tree_rss_mb(p.pid))

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    deadline = None if timeout is None else time.time() + timeout
    res = None
    while res is None:
        try:
            res = q.get(timeout=1)
        except Exception:  # queue.Empty: give up on timeout, or when the child died without a result
            if (deadline is not None and time.time() > deadline) or not p.is_alive():
                stop.set()
                p.kill()
                p.join()
                return None
    stop.set()
    if res[0] == "error":
        th.join()
        p.join()
        print(res[1].rstrip().splitlines()[-1][:300])
        return None
    th.join()
    p.join()
    sec, out, info, own = res
    info["tree_rss"] = peak[0]
    return sec, out, info, max(own, peak[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=400, help="largest corpus for corpusforge local (MB of text)")
    ap.add_argument("--small-mb", type=float, default=100, help="the smaller corpusforge local size (RSS flatness)")
    ap.add_argument("--cf-spark-mb", type=float, default=100, help="corpus prefix for corpusforge on Spark local[2] "
                    "(its removal set is compared with corpusforge local's at the same size; 0 skips)")
    ap.add_argument("--peer-mb", type=float, default=16, help="corpus prefix for datasketch and datatrove")
    ap.add_argument("--spark-ml-mb", default="2,16,32", help="prefix sizes for Spark ML MinHashLSH (stops when one exceeds --cap)")
    ap.add_argument("--cap", type=float, default=300, help="seconds after which a peer run is abandoned")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--datatrove-venv", default=str(Path(__file__).resolve().parent / "_data" / "datatrove-venv"),
                    help="virtualenv with datatrove (created with python3 -m venv + pip when missing; '' skips datatrove)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_dedup-"))
    try:
        t0 = time.time()
        (tmp / "corpus").mkdir()
        files, docs, pairs, jac, size = build(args.mb, tmp / "corpus")
        print(f"corpus: {size / 2**20:.1f} MB of text, {len(docs)} docs, {len(files)} Parquet files, "
              f"{sum(j >= THRESHOLD for j in jac)} true pairs (J >= {THRESHOLD}) among {len(pairs)} evaluation pairs "
              f"(built in {time.time() - t0:.0f}s); 2 cores shared; threshold {THRESHOLD}, char {NGRAM}-grams, "
              f"{NUM_PERM} permutations", flush=True)
        del docs
        print(f"{'system':<44}{'cores':>6}{'MB':>7}{'docs':>8}{'wall s':>8}{'MB/s/core':>10}{'peak RSS MB':>12}{'prec':>7}{'recall':>8}")
        speed, quality, ndocs_of, rss_at, rep_at = {}, {}, {}, {}, {}

        def show(key, name, cores, mb_, n, sec, rss, pr, rc):
            print(f"{name:<44}{cores:>6}{mb_:>7.1f}{n:>8}{sec:>8.1f}{mb_ / sec / cores:>10.2f}{rss:>12.0f}{pr:>7.3f}{rc:>8.3f}",
                  flush=True)
            if key:
                speed[key], quality[key], ndocs_of[key] = mb_ / sec / cores, (pr, rc), n

        id_of = lambda i: f"d{i:09d}"  # noqa: E731
        pair_in = lambda cand: lambda a, b: (min(id_of(a), id_of(b)), max(id_of(a), id_of(b))) in cand  # noqa: E731

        # corpusforge local at two sizes (peak RSS flat as the corpus grows)
        for mb in sorted({args.small_mb, args.mb} | ({args.cf_spark_mb} if args.cf_spark_mb else set())):
            fs, n, sz = prefix(files, mb)
            sec, dec, info, rss = measure(run_corpusforge, fs, str(tmp / f"cf-{mb}"), args.workers)
            rep = lambda i, dec=dec: dec.get(id_of(i), id_of(i))  # noqa: E731
            pr, rc, _ = scores(lambda a, b: rep(a) == rep(b), pairs, jac, n)
            show("cf" if mb == args.mb else None, f"corpusforge local (w={args.workers}) b,r={info['bands_rows']}", args.workers, sz / 2**20, n, sec,
                 rss, pr, rc)
            rep_at[mb] = dec
            if mb in (args.small_mb, args.mb):
                rss_at[sz / 2**20] = rss
            shutil.rmtree(tmp / f"cf-{mb}", ignore_errors=True)
        if len(rss_at) == 2:
            (m1, r1), (m2, r2) = sorted(rss_at.items())
            print(f"corpusforge local peak RSS: {r1:.0f} MB at {m1:.0f} MB, {r2:.0f} MB at {m2:.0f} MB: "
                  f"{r2 / r1:.2f}x the RSS for {m2 / m1:.1f}x the data", flush=True)

        # corpusforge on Spark local[2]: the same stage through SparkPrimitives
        if args.cf_spark_mb:
            fs, n, sz = prefix(files, args.cf_spark_mb)
            r = measure(run_corpusforge_spark, fs, str(tmp / "cf-spark"), timeout=max(args.cap, 600))
            if r is None:
                print(f"corpusforge on Spark: no result within {max(args.cap, 600):.0f}s on {sz / 2**20:.1f} MB")
            else:
                sec, dec, info, rss = r
                rep = lambda i: dec.get(id_of(i), id_of(i))  # noqa: E731
                pr, rc, _ = scores(lambda a, b: rep(a) == rep(b), pairs, jac, n)
                show("cfs", "corpusforge on Spark local[2]*", 2, sz / 2**20, n, sec, rss, pr, rc)
                print(f"  (* Spark start-up {info['startup']:.1f}s excluded; with it {sz / 2**20 / (sec + info['startup']) / 2:.2f} "
                      f"MB/s/core; RSS includes the JVM and Python workers)", flush=True)
                local = rep_at.get(args.cf_spark_mb)
                if local is not None:
                    same = local == dec
                    print(f"  removal set (id -> duplicate_of) on Spark == local at {sz / 2**20:.1f} MB: {same} "
                          f"({len(dec)} removed on Spark, {len(local)} locally)", flush=True)
                    if not same:
                        print(f"  differ: {sorted(set(local.items()) ^ set(dec.items()))[:10]}")
            shutil.rmtree(tmp / "cf-spark", ignore_errors=True)

        fs, n, sz = prefix(files, args.peer_mb)
        r = measure(run_datasketch, fs, timeout=args.cap)
        if r is None:
            print(f"datasketch: no result within {args.cap:.0f}s on {sz / 2**20:.1f} MB")
        else:
            sec, cand, info, rss = r
            pr, rc, _ = scores(pair_in(cand), pairs, jac, n)
            show("ds", f"datasketch MinHashLSH b,r={info['bands_rows']}", 1, sz / 2**20, n, sec, rss, pr, rc)

        dt_py = datatrove_python(Path(args.datatrove_venv)) if args.datatrove_venv else None
        if dt_py is None:
            print("datatrove: no virtualenv; not measured")
        else:
            from corpusforge.stages.dedup import DedupMinhash

            b, rws = DedupMinhash(DedupMinhash.Params(threshold=THRESHOLD, num_perm=NUM_PERM, ngram=NGRAM)).band_rows()
            jl = to_jsonl(fs, tmp / "jsonl")  # the same prefix as datasketch, written before the clock starts
            r = measure(run_datatrove, str(dt_py), jl, str(tmp / "datatrove"), b, rws, timeout=args.cap + 60)
            if r is None:
                print(f"datatrove: no result within {args.cap + 60:.0f}s on {sz / 2**20:.1f} MB")
            else:
                sec, (cluster, removed), info, _ = r
                same = lambda a, b: id_of(a) in cluster and cluster.get(id_of(a)) == cluster.get(id_of(b))  # noqa: E731
                pr, rc, _ = scores(same, pairs, jac, n)
                show("dt", f"datatrove minhash 4 steps b,r=({b}, {rws})", 1, sz / 2**20, n, sec, info["child_rss"], pr, rc)
                print(f"  datatrove steps (s): {info['steps']}, subprocess wall {info['wall']:.1f}s with start-up; "
                      f"{len(removed)} removed; char {NGRAM}-grams via a custom WordTokenizer, xxhash64, no verification; "
                      f"RSS = the subprocess's ru_maxrss", flush=True)
            shutil.rmtree(tmp / "datatrove", ignore_errors=True)
            shutil.rmtree(tmp / "jsonl", ignore_errors=True)

        for mb in [float(x) for x in args.spark_ml_mb.split(",") if x]:
            fs, n, sz = prefix(files, mb)
            r = measure(run_spark_ml, fs, timeout=args.cap + 60)
            if r is None:
                print(f"spark ML MinHashLSH: no result within {args.cap:.0f}s on {sz / 2**20:.1f} MB; larger sizes skipped")
                break
            sec, cand, info, rss = r
            pr, rc, _ = scores(pair_in(cand), pairs, jac, n)
            show("sp", "spark ML MinHashLSH t=5 local[2]", 2, sz / 2**20, n, sec, rss, pr, rc)
            if sec > args.cap:
                print(f"spark ML MinHashLSH exceeded {args.cap:.0f}s at {sz / 2**20:.1f} MB; larger sizes skipped")
                break

        fs, n, sz = prefix(files, min(args.peer_mb, 4))
        sig = {}
        for mode in ("numba", "numpy", "loop", "datasketch"):
            sec = measure(run_signatures, fs, mode)[0]
            sig[mode] = sz / 2**20 / sec
            print(f"signatures only ({mode:<10}) {sz / 2**20:6.1f} MB {sec:7.1f} s {sig[mode]:7.2f} MB/s", flush=True)
        print(f"signatures: the numba kernels are {sig['numba'] / sig['numpy']:.1f}x numpy over whole batches, which is "
              f"{sig['numpy'] / sig['loop']:.0f}x a Python loop per shingle and {sig['numpy'] / sig['datasketch']:.0f}x "
              "datasketch update_batch")

        parts = []
        cf = speed["cf"]  # the largest corpusforge local run
        big = rep_at[args.mb]
        for key, name, target in (("sp", "Spark ML MinHashLSH", 100), ("ds", "datasketch", 5), ("dt", "datatrove", 2)):
            if key in speed:
                p_, r_ = quality[key]
                # corpusforge's precision/recall on the same evaluation pairs (those inside the peer's prefix)
                cfp, cfr, _ = scores(lambda a, b: big.get(id_of(a), id_of(a)) == big.get(id_of(b), id_of(b)), pairs, jac,
                                     ndocs_of[key])
                ok = cf / speed[key] >= target and (key != "sp" or (cfp >= p_ - 0.005 and cfr >= r_ - 0.005))
                parts.append(f"{cf / speed[key]:.1f}x {name} (target {target}x: {'met' if ok else 'NOT met'}; "
                             f"P/R {cfp:.3f}/{cfr:.3f} vs {p_:.3f}/{r_:.3f})")
        if len(rss_at) == 2:
            (m1, r1), (m2, r2) = sorted(rss_at.items())
            parts.append(f"peak RSS {r1:.0f} -> {r2:.0f} MB for {m1:.0f} -> {m2:.0f} MB")
        print(f"headline: corpusforge dedup_minhash local, MB/s per core, is {'; '.join(parts) or 'n/a'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
