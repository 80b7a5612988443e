"""Memory of `corpusforge report RUN_A RUN_B --compare` as the runs grow.

Generates pairs of runs in the real layout (kept + rejects Parquet, manifest.json) with N documents
each, the second dropping a different 2 % (a threshold change), and measures in fresh processes the
peak RSS of compare.compare() and of the naive floor it must beat: both runs' fate columns read whole
and joined in memory (pyarrow). Bounded memory means compare's peak stays flat while the naive one
grows with N. Last line: compare's RSS growth from the smallest to the largest N, and its ratio
to the naive join at the largest N.

    python bench/bench_compare.py [--docs 250000 1000000 4000000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from corpusforge.schema import REJECT_SCHEMA  # noqa: E402

PART = 250_000  # documents per part file, as a run with a few workers writes them
PROSE = ROOT.parent / "shared/data/prose/luxun_fiction_essays.jsonl"


def _texts() -> list[str]:
    lines = [json.loads(x)["text"] for x in PROSE.open(encoding="utf-8")] if PROSE.exists() else ["中文文本" * 40]
    return [t[i:i + 120] for t in lines for i in range(0, min(len(t), 1200), 120) if len(t[i:i + 120]) > 20]


def make_run(d: Path, n: int, drop_lo: float, drop_hi: float, texts: list[str]) -> None:
    """n documents; those whose u = hash(id) / 2^64 falls in [drop_lo, drop_hi) are rejected (too short)."""
    files = []
    for part, start in enumerate(range(0, n, PART)):
        k = np.arange(start, min(n, start + PART))
        ids = [hashlib.blake2b(str(i).encode(), digest_size=10).hexdigest() for i in k]
        u = np.array([int(x[:8], 16) / 2 ** 32 for x in ids])
        drop = (u >= drop_lo) & (u < drop_hi)
        src = pa.array(["web" if i % 3 else "books" for i in k])
        txt = pa.array([texts[i % len(texts)] for i in k])
        kept_idx, rej_idx = pa.array(np.flatnonzero(~drop)), pa.array(np.flatnonzero(drop))
        kept = pa.table({"id": pa.array(ids), "source": src, "text": txt}).take(kept_idx)
        nr = len(rej_idx)
        rej = pa.table({"id": pa.array(ids).take(rej_idx), "source": src.take(rej_idx), "stage": pa.array(["pangu_rules"] * nr),
                        "reason": pa.array(["pangu_rules:too_short"] * nr), "scores": pa.nulls(nr, REJECT_SCHEMA.field("scores").type),
                        "duplicate_of": pa.nulls(nr, pa.string()), "text_preview": txt.take(rej_idx), "meta": pa.nulls(nr, REJECT_SCHEMA.field("meta").type)})
        for kind, t in (("kept", kept), ("rejects", rej)):
            rel = f"{kind}/part-{part:05d}.parquet"
            (d / kind).mkdir(parents=True, exist_ok=True)
            pq.write_table(t, d / rel, compression="zstd")
            files.append({"path": rel, "kind": kind, "rows": t.num_rows, "sha256": ""})
    kept_n = sum(f["rows"] for f in files if f["kind"] == "kept")
    m = {"status": "ok", "engine": "local", "inputs": [{"path": "in.jsonl", "source": "web", "size": n, "sha256": "x"}],
         "stages": [{"name": "ingest", "in": n, "kept": n, "dropped": {}, "quarantined": {}},
                    {"name": "pangu_rules", "in": n, "kept": kept_n, "dropped": {"pangu_rules:too_short": n - kept_n}, "quarantined": {}}],
         "files": files, "totals": {"records": n, "kept": kept_n, "quarantined": 0}}
    (d / "manifest.json").write_text(json.dumps(m))


CHILD = {
    "compare": "from corpusforge.report.compare import compare; c = compare(A, B); out = c['flipped']",
    "naive": ("import pyarrow.parquet as pq, pyarrow as pa, glob\n"
              "def fates(d):\n"
              "    k = pq.read_table(sorted(glob.glob(d + '/kept/*.parquet')), columns=['id', 'text'])\n"
              "    r = pq.read_table(sorted(glob.glob(d + '/rejects/*.parquet')), columns=['id', 'reason'])\n"
              "    return pa.concat_tables([pa.table({'id': k['id'], 'fate': pa.array(['kept'] * k.num_rows)}), pa.table({'id': r['id'], 'fate': r['reason']})])\n"
              "j = fates(A).join(fates(B), 'id', join_type='full outer', left_suffix='_a', right_suffix='_b')\n"
              "import pyarrow.compute as pc; out = pc.sum(pc.not_equal(j['fate_a'], j['fate_b'])).as_py()"),
}


def measure(kind: str, a: Path, b: Path) -> tuple[float, float, int]:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the (large) forking parent
    code = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r}); A, B = {str(a)!r}, {str(b)!r}; t = time.time()\n"
            + CHILD[kind] + "\nhwm = next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM'))"
            "\nprint(hwm / 1024, time.time() - t, out)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rss, secs, flipped = r.stdout.split()
    return float(rss), float(secs), int(flipped)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, nargs="+", default=[250_000, 1_000_000, 4_000_000])
    args = ap.parse_args()
    texts = _texts()
    res = {}
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        for n in args.docs:
            a, b = Path(tmp) / f"a{n}", Path(tmp) / f"b{n}"
            t = time.time()
            make_run(a, n, 0.10, 0.20, texts)
            make_run(b, n, 0.12, 0.22, texts)  # 2 % newly dropped, 2 % newly kept
            gen = time.time() - t
            (rc, tc, fc), (rn, tn, fn) = measure("compare", a, b), measure("naive", a, b)
            assert fc == fn, (fc, fn)  # both find the same flips
            res[n] = (rc, rn)
            print(f"{n:>10,} docs per run: compare peak RSS {rc:7.0f} MB in {tc:6.1f} s | whole-table join {rn:7.0f} MB in {tn:6.1f} s | "
                  f"{fc:,} flips (generated in {gen:.0f} s)", flush=True)
            for d in (a, b):
                subprocess.run(["rm", "-rf", str(d)], check=True)
    lo, hi = min(res), max(res)
    print(f"compare peak RSS {res[lo][0]:.0f} MB at {lo:,} docs -> {res[hi][0]:.0f} MB at {hi:,} docs "
          f"({res[hi][0] / res[lo][0]:.2f}x for {hi / lo:.0f}x the documents); whole-table join {res[hi][1]:.0f} MB: "
          f"compare uses {res[hi][0] / res[hi][1]:.2f}x of it at {hi:,} docs")


if __name__ == "__main__":
    main()
