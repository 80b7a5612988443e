"""`corpusforge report serve RUN_DIR`: the report and a human-evaluation page on a stdlib
ThreadingHTTPServer. Loopback only unless --allow-remote; the Host header must name this server
(DNS rebinding); every response carries a strict CSP and no page has script; a rating POST needs
the per-process token that only our own form carries and, when the browser sends one, a same-origin
Origin header (cross-site form posts).

Each page is rendered once per run state (sha256 of manifest.json, the stat of human_eval.json and a
counter bumped by every rating saved here) and served from a small cache; concurrent requests for a
page not yet rendered wait for the one render. At most MAX_IN_FLIGHT requests are handled at once
(the rest wait in the listen backlog), each connection has a CONN_TIMEOUT socket timeout, and a
dropped or stalled client is one log line, never a traceback."""

from __future__ import annotations

import hashlib
import html
import ipaddress
import os
import secrets
import sys
import threading
import traceback
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from corpusforge.errors import CorpusforgeError
from corpusforge.report import human_eval, render
from corpusforge.report.build import RunReport, gather_extra, page

MAX_BODY = 64 * 1024
MAX_IN_FLIGHT = 32  # requests handled at once; more wait (accept loop blocks, the kernel backlog holds them)
BACKLOG = 512  # listen backlog (socketserver's default of 5 makes a burst of clients retry SYNs for seconds)
CONN_TIMEOUT = 10.0  # seconds a connection may stall on any read or write before it is dropped
CACHE_PAGES = 32  # rendered pages kept (one run state; `/` plus human-eval pages per reviewer)
HEADERS = {"Content-Security-Policy": render.CSP + "; frame-ancestors 'none'", "X-Content-Type-Options": "nosniff",
           # same-origin, not no-referrer: under no-referrer Chromium sends `Origin: null` on our own form posts
           "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY", "Cache-Control": "no-store"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def eval_page(report: RunReport, token: str, reviewer: str, saved: str | None) -> str:
    e = render.e
    mine = {doc: per.get(reviewer) for doc, per in human_eval.load(report.run_dir)["ratings"].items()} if reviewer else {}
    agg = human_eval.aggregate(human_eval.load(report.run_dir))
    out = [f'<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>human evaluation</title><style>{render.STYLE}</style></head><body>'
           '<nav><a href="/">report</a><a href="/human-eval">human evaluation</a></nav>'
           f'<h1>Human evaluation: {e(report.data["name"])}</h1>'
           f'<p>{len(report.data["eval_samples"])} kept documents, chosen by the smallest blake2b(seed, id) (the same samples on every start). '
           'Rate fluency from 1 (unreadable) to 5 (fluent, natural Chinese) and mark the low-quality content you see '
           '(PanGu-α\'s criteria: ads, repeated short sentences, sensitive words).</p>',
           f'<p class="progress" data-ratings="{agg["ratings"]}">ratings so far: {agg["ratings"]:,} '
           f'(low quality {agg["low_quality"]:,}); your ratings: {sum(1 for v in mine.values() if v):,}</p>']
    if saved:
        out.append(f'<p class="ok saved">saved rating of {e(saved)}</p>')
    for d in report.data["eval_samples"]:
        cur = mine.get(d["id"]) or {}
        radios = "".join(f'<label><input type="radio" name="fluency" value="{v}" required{" checked" if cur.get("fluency") == v else ""}> {v}</label> '
                         for v in range(1, 6))
        flags = "".join(f'<label><input type="checkbox" name="flags" value="{k}"{" checked" if k in cur.get("flags", []) else ""}> {e(lab)}</label> '
                        for k, lab in human_eval.FLAGS.items())
        out.append(f'<div class="eval-doc" id="doc-{e(d["id"])}" data-id="{e(d["id"])}"><p class="muted">id {e(d["id"])} · {e(d["source"])} · {d["chars"]:,} characters'
                   f'{" (first " + str(len(d["text"])) + " shown)" if d["chars"] > len(d["text"]) else ""}</p>'
                   f'<div class="doc">{report.highlighter.html(d["text"])}</div>'
                   f'<form method="post" action="/human-eval" class="rate">'
                   f'<input type="hidden" name="token" value="{e(token)}"><input type="hidden" name="doc_id" value="{e(d["id"])}">'
                   f'<label>reviewer <input name="reviewer" required maxlength="64" value="{e(reviewer)}"></label> '
                   f'fluency {radios}<br>{flags}<button type="submit">save rating</button>'
                   f'{" <span class=ok>rated</span>" if cur else ""}</form></div>')
    out.append("</body></html>")
    return "".join(out)


class PageCache:
    """Rendered pages (UTF-8 bytes) by (run state, page, params). One lock guards the dict; a per-key
    lock makes concurrent misses of one key wait for a single render instead of each rendering.
    Entries of an older run state are dropped when a page of a newer one is stored."""

    def __init__(self, max_pages: int = CACHE_PAGES):
        self.max_pages = max_pages
        self._lock = threading.Lock()
        self._pages: dict[tuple, bytes] = {}
        self._rendering: dict[tuple, threading.Lock] = {}
        self.renders = 0

    def get(self, state: tuple, key: tuple, render) -> bytes:
        k = (state, *key)
        with self._lock:
            hit = self._pages.get(k)
            if hit is not None:
                return hit
            klock = self._rendering.setdefault(k, threading.Lock())
        with klock:
            with self._lock:
                hit = self._pages.get(k)
            if hit is not None:
                return hit
            try:
                body = render().encode("utf-8")
                with self._lock:
                    self.renders += 1
                    for old in [o for o in self._pages if o[0] != state]:
                        del self._pages[old]
                    self._pages[k] = body
                    while len(self._pages) > self.max_pages:
                        del self._pages[next(iter(self._pages))]
            finally:
                with self._lock:
                    self._rendering.pop(k, None)
        return body


class ReportServer(ThreadingHTTPServer):
    """Thread per request, at most MAX_IN_FLIGHT at once; errors of a request are one stderr line."""

    daemon_threads = True
    block_on_close = False  # Ctrl-C does not wait for stalled clients (each is bounded by CONN_TIMEOUT anyway)
    request_queue_size = BACKLOG

    def __init__(self, *args, max_in_flight: int = MAX_IN_FLIGHT, **kw):
        self.slots = threading.BoundedSemaphore(max_in_flight)
        super().__init__(*args, **kw)

    def process_request(self, request, client_address):
        self.slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address):
        err = sys.exc_info()[1]
        who = f"{client_address[0]}:{client_address[1]}" if isinstance(client_address, tuple) and len(client_address) >= 2 else str(client_address)
        where = ""
        if not isinstance(err, OSError):  # a bug, not the network: say where, still on one line
            tb = traceback.extract_tb(err.__traceback__)
            if tb:
                where = f" (at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno})"
        msg = " ".join(str(err).split())[:300]
        sys.stderr.write(f"report serve: {who}: {type(err).__name__}: {msg}{where}\n")


def run_state(run_dir: str, saved: int) -> tuple:
    """What the pages depend on besides the tables read at start: the manifest's bytes, the ratings
    file (stat: a rewrite is a new inode and mtime) and the count of ratings saved by this process
    (two saves within one mtime tick)."""
    from corpusforge.errors import CorpusforgeError
    from corpusforge.io import fs, store

    try:
        manifest = hashlib.sha256(store.read_bytes(fs.join(run_dir, "manifest.json"))).hexdigest()
    except (OSError, CorpusforgeError):
        manifest = None
    path = fs.join(run_dir, human_eval.FILE)
    try:
        if fs.is_remote(path):
            ratings = fs.stat(path)
        else:
            st = os.stat(path)
            ratings = (st.st_mtime_ns, st.st_size, st.st_ino)
    except (OSError, CorpusforgeError):
        ratings = None
    return manifest, ratings, saved


def make_server(report: RunReport, extra: dict, host: str = "127.0.0.1", port: int = 8765,
                allowed_hosts: list[str] = (), max_in_flight: int = MAX_IN_FLIGHT) -> ReportServer:
    token = secrets.token_urlsafe(24)
    sample_ids = {d["id"] for d in report.data["eval_samples"]}
    cache = PageCache()
    saves = [0]  # ratings saved by this process (part of the run state)
    saves_lock = threading.Lock()

    def report_page() -> str:
        return page([report], extra).replace("<nav>", '<nav><a href="/human-eval">human evaluation</a>', 1)

    class Handler(BaseHTTPRequestHandler):
        server_version = "corpusforge-report"
        sys_version = ""
        timeout = CONN_TIMEOUT  # StreamRequestHandler sets it on the connection

        def log_message(self, fmt, *args):  # one short line per request on stderr (control characters escaped)
            msg = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in fmt % args)
            sys.stderr.write(f"report serve: {self.address_string()} {msg[:300]}\n")

        def _send(self, status: int, body: str | bytes = "", ctype: str = "text/html; charset=utf-8", extra_headers: dict | None = None):
            data = body if isinstance(body, bytes) else body.encode("utf-8")
            self.send_response(status)
            for k, v in {**HEADERS, "Content-Type": ctype, "Content-Length": str(len(data)), **(extra_headers or {})}.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _host_ok(self) -> bool:
            ok = (self.headers.get("Host") or "").lower() in self.server.allowed
            if not ok:
                self._send(HTTPStatus.MISDIRECTED_REQUEST, "unknown Host header", "text/plain; charset=utf-8")
            return ok

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            if not self._host_ok():
                return
            url = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(url.query)
            if url.path not in ("/", "/human-eval"):
                return self._send(HTTPStatus.NOT_FOUND, "not found", "text/plain; charset=utf-8")
            state = run_state(report.run_dir, saves[0])
            try:
                if url.path == "/":
                    body = cache.get(state, ("/",), report_page)
                else:
                    reviewer, saved = (q.get("reviewer") or [""])[0][:64], (q.get("saved") or [None])[0]
                    body = cache.get(state, ("/human-eval", reviewer, saved), lambda: eval_page(report, token, reviewer, saved))
            except CorpusforgeError as err:  # e.g. an unreadable human_eval.json
                return self._send(HTTPStatus.INTERNAL_SERVER_ERROR, str(err), "text/plain; charset=utf-8")
            self._send(HTTPStatus.OK, body)

        def do_POST(self):
            if not self._host_ok():
                return
            if urllib.parse.urlsplit(self.path).path != "/human-eval":
                return self._send(HTTPStatus.NOT_FOUND, "not found", "text/plain; charset=utf-8")
            origin = self.headers.get("Origin")
            if origin is not None and origin.lower() not in self.server.origins:
                return self._send(HTTPStatus.FORBIDDEN, "cross-origin POST refused", "text/plain; charset=utf-8")
            try:
                n = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                n = -1
            if not 0 <= n <= MAX_BODY:
                return self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large", "text/plain; charset=utf-8")
            form = urllib.parse.parse_qs(self.rfile.read(n).decode("utf-8", "replace"))
            one = lambda k: (form.get(k) or [""])[0]  # noqa: E731
            if not secrets.compare_digest(one("token"), token):
                return self._send(HTTPStatus.FORBIDDEN, "missing or wrong form token (reload the page)", "text/plain; charset=utf-8")
            doc, reviewer = one("doc_id"), one("reviewer").strip()[:64]
            if doc not in sample_ids or not reviewer or one("fluency") not in {"1", "2", "3", "4", "5"}:
                return self._send(HTTPStatus.BAD_REQUEST, "need doc_id (a sampled document), reviewer and fluency 1-5", "text/plain; charset=utf-8")
            try:
                human_eval.save_rating(report.run_dir, doc, reviewer, int(one("fluency")), form.get("flags", []))
            except CorpusforgeError as err:
                return self._send(HTTPStatus.BAD_REQUEST, str(err), "text/plain; charset=utf-8")
            finally:
                with saves_lock:
                    saves[0] += 1
            loc = "/human-eval?" + urllib.parse.urlencode({"reviewer": reviewer, "saved": doc}) + "#doc-" + urllib.parse.quote(doc)
            self._send(HTTPStatus.SEE_OTHER, f'<a href="{html.escape(loc)}">saved</a>', extra_headers={"Location": loc})

    srv = ReportServer((host, port), Handler, max_in_flight=max_in_flight)
    srv.page_cache = cache
    real_port = srv.server_address[1]
    names = {"127.0.0.1", "localhost", "[::1]", host if ":" not in host else f"[{host}]", *allowed_hosts}
    srv.allowed = {f"{h.lower()}:{real_port}" for h in names}
    srv.origins = {f"http://{h}" for h in srv.allowed}
    return srv


def serve(run_dir: str, host: str, port: int, allow_remote: bool, allowed_hosts: list[str], eval_samples: int,
          shards: str | None, train: list[str], quality_eval: list[str]) -> int:
    if not is_loopback(host) and not allow_remote:
        raise CorpusforgeError("remote_refused", f"--host {host} is not a loopback address; add --allow-remote to serve it "
                               "(ratings can be written by anyone who reaches the port)")
    report = RunReport(run_dir, shards, eval_samples=eval_samples)
    extra = gather_extra([run_dir], [report.found], train, quality_eval)
    try:
        srv = make_server(report, extra, host, port, allowed_hosts)
    except OSError as err:
        raise CorpusforgeError("serve_failed", f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    if not is_loopback(host):
        print(f"report serve: WARNING: listening on {host}, reachable from other machines; no authentication "
              "beyond the form token", file=sys.stderr, flush=True)
    shown = host if ":" not in host else f"[{host}]"
    print(f"serving http://{shown}:{srv.server_address[1]}/ (human evaluation: /human-eval; Ctrl-C to stop)", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0
