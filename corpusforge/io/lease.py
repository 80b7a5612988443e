"""The output lock on an object store, where there is no flock: a lease object OUT/.corpusforge-lock
naming its holder (host, pid, start) with an expiry the holder renews while it runs.

pyarrow's stores offer no conditional create, so a writer PUTs its lease, waits SETTLE seconds and reads
it back: of two writers that raced, the one whose PUT landed last holds the lease and the other is
refused. This closes the race unless one writer's read of "no lease" and its PUT are further apart
than SETTLE (docs/storage.md). A lease past its expiry, or held by a process of this host that is gone
(killed), is taken over with a notice; a holder that finds its lease taken over says so on stderr and stops renewing."""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import threading
import time

from corpusforge.errors import CorpusforgeError
from corpusforge.io import fs, store

SETTLE = 0.5


def _gone_from_this_host(h: dict) -> bool:
    if h.get("host") != socket.gethostname() or not isinstance(h.get("pid"), int):
        return False
    try:
        os.kill(h["pid"], 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class LeaseLock:
    def __init__(self, folder: str, name: str):
        self.folder, self.path = folder, fs.join(folder, name)
        self.seconds = float(fs.option("lease_seconds", 60))
        self.token = secrets.token_hex(8)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _holder(self) -> dict | None:
        try:
            h = store.read_json(self.path)
        except (OSError, ValueError):
            return None
        return h if isinstance(h, dict) else None

    def _write(self) -> None:
        store.put_bytes(self.path, json.dumps({
            "token": self.token, "host": socket.gethostname(), "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "expires_unix": time.time() + self.seconds}).encode())

    def _refuse(self, h: dict) -> CorpusforgeError:
        return CorpusforgeError("output_locked", f"{self.folder} is being written by host {h.get('host')} pid {h.get('pid')} "
                                f"(started {h.get('started')}, lease renewed every {self.seconds / 3:.0f} s); "
                                "wait for it to finish (or stop it), then rerun")

    def acquire(self) -> None:
        h = self._holder()
        if h and h.get("token") != self.token:
            if float(h.get("expires_unix", 0)) > time.time() and not _gone_from_this_host(h):
                raise self._refuse(h)
            print(f"corpusforge: {self.folder}: took over a stale lease (host {h.get('host')} pid {h.get('pid')} "
                  "is gone or stopped renewing it)", file=sys.stderr)
        self._write()
        time.sleep(SETTLE)
        h = self._holder()
        if not h or h.get("token") != self.token:
            raise self._refuse(h or {})
        self._thread = threading.Thread(target=self._renew, name="corpusforge-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            h = self._holder()
            if not h or h.get("token") != self.token:
                print(f"corpusforge: {self.folder}: the output lease was taken over by another writer", file=sys.stderr)
                return
            self._write()

    def release(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        h = self._holder()
        if h and h.get("token") == self.token:
            store.delete(self.path)
