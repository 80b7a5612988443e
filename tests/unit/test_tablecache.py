"""The on-disk table cache: a cached table equals the one built, a cut file is rebuilt, and a folder that
cannot be written (or CORPUSFORGE_CACHE=off) only means the table is built."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np

from corpusforge.algorithms import tablecache


def _fresh(monkeypatch, d):
    monkeypatch.setenv("CORPUSFORGE_CACHE", str(d))
    calls = []

    @tablecache.cached
    def table(n):
        calls.append(n)
        return np.arange(n, dtype=np.int32), np.ones(3, bool)

    return table, calls


def _same(a, b):
    a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
    return len(a) == len(b) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b))


def test_a_table_is_built_once_per_machine_and_loaded_equal(tmp_path, monkeypatch):
    table, calls = _fresh(monkeypatch, tmp_path)
    first = table(5)
    (f,) = tmp_path.glob("table-*.npz")
    again, calls2 = _fresh(monkeypatch, tmp_path)  # a new process: an empty functools cache
    assert _same(again(5), first) and calls == [5] and calls2 == []
    f.write_bytes(f.read_bytes()[:100])  # cut: rebuilt and rewritten
    third, calls3 = _fresh(monkeypatch, tmp_path)
    assert _same(third(5), first) and calls3 == [5] and np.load(f)["n"] == 2
    assert [p.name for p in tmp_path.iterdir()] == [f.name]  # no temp file left


def test_other_arguments_or_code_are_other_files(tmp_path, monkeypatch):
    table, _ = _fresh(monkeypatch, tmp_path)
    table(5), table(6)
    assert len(list(tmp_path.glob("table-*.npz"))) == 2
    p = tablecache.path_for(table.uncached, (5,))
    monkeypatch.setattr(tablecache, "_code_key", lambda: "other code")
    assert tablecache.path_for(table.uncached, (5,)) != p


def test_a_folder_that_cannot_be_made_only_means_building(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("a user's file")
    table, calls = _fresh(monkeypatch, tmp_path / "file" / "cache")  # mkdir fails: OSError
    assert _same(table(4), (np.arange(4, dtype=np.int32), np.ones(3, bool))) and calls == [4]
    assert (tmp_path / "file").read_text() == "a user's file"


def test_off_writes_nothing(tmp_path, monkeypatch):
    table, calls = _fresh(monkeypatch, tmp_path)
    monkeypatch.setenv("CORPUSFORGE_CACHE", "off")
    table(3)
    assert calls == [3] and not list(tmp_path.iterdir())


_TABLES = """
from corpusforge.algorithms import clean_scan, pangu_scan, skeleton_scan, units
from corpusforge.models import featurize
from corpusforge.rulepack import SKELETON_DROP_RE
from corpusforge.stages import clean, pangu_rules
FOLD = tuple(clean._FW_ALNUM.items())
TABLES = [(featurize._category_codes, ()), (units.tables, ()),
          (clean_scan.char_table, ((clean._STRIP_RE, clean._FORMAT_PRIVATE_RE), FOLD)),
          (pangu_scan.flags, (pangu_rules._ZH_RE,)), (skeleton_scan.table, (SKELETON_DROP_RE,))]
"""


def test_the_kernels_tables_from_the_cache_equal_the_built_ones(tmp_path):
    """Every cached table the stages use, loaded in a fresh process from a cache it just filled, equals the
    table built without the cache."""
    code = _TABLES + "import pickle, sys\nsys.stdout.buffer.write(pickle.dumps([f(*a) for f, a in TABLES]))\n"
    env = {**os.environ, "CORPUSFORGE_CACHE": str(tmp_path)}
    for _ in range(2):  # fills the cache, then reads it
        got = pickle.loads(subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True).stdout)
    assert len(list(tmp_path.glob("*.npz"))) == 5
    ns: dict = {}
    exec(_TABLES, ns)
    assert all(_same(g, f.uncached(*a)) for g, (f, a) in zip(got, ns["TABLES"]))
