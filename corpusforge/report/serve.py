"""`corpusforge report serve RUN_DIR`: the report, a human-evaluation page and a document browser
(/browse, /doc: browse_html.py) on a stdlib ThreadingHTTPServer. Loopback only unless --allow-remote;
the Host header must name this server (DNS rebinding); every response carries a strict CSP and no
page has script; a rating POST needs the per-process token that only our own form carries and, when
the browser sends one, a same-origin Origin header (cross-site form posts).

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
from corpusforge.report import ablation_render, browse_html, compare_render, human_eval, render
from corpusforge.report.build import RunReport, compare_runs, gather_extra, page
from corpusforge.report.eval_page import NAV, Offer, flipped_docs
from corpusforge.report.eval_page import page as eval_page

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


def offers(report: RunReport, other: RunReport | None, cmp: dict | None) -> dict[tuple[str, str], Offer]:
    """The /human-eval pages by (run, sampling rule): one run's kept sample, or with a comparison both
    runs' kept samples and the documents each kept that the other did not."""
    def kept(r: RunReport, run: str) -> Offer:
        return Offer(r.run_dir, r.data["name"], "kept", r.data["eval_samples"], r.highlighter, run)

    if other is None:
        return {("", "kept"): kept(report, "")}
    out = {}
    for run, r in (("a", report), ("b", other)):
        out[(run, "kept")] = kept(r, run)
        out[(run, "flipped")] = Offer(r.run_dir, r.data["name"], "flipped", flipped_docs(cmp, run), r.highlighter, run)
    return out


def make_server(report: RunReport, extra: dict, host: str = "127.0.0.1", port: int = 8765,
                allowed_hosts: list[str] = (), max_in_flight: int = MAX_IN_FLIGHT, other: RunReport | None = None) -> ReportServer:
    """`other` (with extra["compare"], compare.compare(report, other)): serve the comparison of two runs."""
    token = secrets.token_urlsafe(24)
    cmp = extra.get("compare") if other is not None else None
    if other is not None and cmp is None:
        raise CorpusforgeError("bad_args", "serving two runs needs their comparison (extra['compare'])")
    pages = offers(report, other, cmp)
    sample_ids = {k: {d["id"] for d in o.docs} for k, o in pages.items()}
    runs = [report] + ([other] if other is not None else [])
    nav_more = ('<a href="/compare">comparison</a>' if cmp else "") + ('<a href="/ablation">ablation</a>' if extra.get("ablation") else "")
    cache = PageCache()
    saves = [0]  # ratings saved by this process (part of the run state)
    saves_lock = threading.Lock()

    def report_page() -> str:
        return page(runs, extra, served=True).replace("<nav>", '<nav><a href="/browse">browse documents</a><a href="/human-eval">human evaluation</a>'
                                                      + nav_more, 1)

    cached_paths = {"/", "/human-eval"} | ({"/compare"} if cmp else set()) | ({"/ablation"} if extra.get("ablation") else set())

    def ablation_page() -> str:
        return render.standalone("corpusforge ablation", NAV.format(more=nav_more), ablation_render.section(extra["ablation"]))

    def compare_page() -> str:
        return compare_render.page(cmp, compare_render.human_of(report.run_dir, other.run_dir), True, NAV.format(more=nav_more),
                                   [r.highlighter for r in runs])

    def offer_of(q: dict) -> Offer | None:
        one = lambda k: (q.get(k) or [""])[0]  # noqa: E731
        return pages.get((one("run") or ("a" if cmp else ""), one("sample") or "kept"))

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
            if url.path in ("/browse", "/doc"):  # the document browser (browse.py): read per request, not cached
                return self._send(*browse_html.handle(url.path, q, report.run_dir, report.highlighter, report.data["sources"]))
            if url.path not in cached_paths:
                return self._send(HTTPStatus.NOT_FOUND, "not found", "text/plain; charset=utf-8")
            state = tuple(run_state(r.run_dir, saves[0]) for r in runs)
            try:
                if url.path == "/":
                    body = cache.get(state, ("/",), report_page)
                elif url.path == "/compare":
                    body = cache.get(state, ("/compare",), compare_page)
                elif url.path == "/ablation":
                    body = cache.get(state, ("/ablation",), ablation_page)
                else:
                    o = offer_of(q)
                    if o is None:
                        return self._send(HTTPStatus.NOT_FOUND, "no such human-evaluation page (run a or b, sample kept or flipped)",
                                          "text/plain; charset=utf-8")
                    reviewer, saved = (q.get("reviewer") or [""])[0][:64], (q.get("saved") or [None])[0]
                    other_name = (other if o.run == "a" else report).data["name"] if cmp else ""
                    body = cache.get(state, ("/human-eval", o.run, o.rule, reviewer, saved),
                                     lambda: eval_page(o, token, reviewer, saved, other_name, nav_more))
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
            doc, reviewer, o = one("doc_id"), one("reviewer").strip()[:64], offer_of(form)
            if o is None or doc not in sample_ids[(o.run, o.rule)] or not reviewer or one("fluency") not in {"1", "2", "3", "4", "5"}:
                return self._send(HTTPStatus.BAD_REQUEST, "need doc_id (a sampled document), reviewer and fluency 1-5", "text/plain; charset=utf-8")
            try:
                human_eval.save_rating(o.run_dir, doc, reviewer, int(one("fluency")), form.get("flags", []), o.rule)
            except CorpusforgeError as err:
                return self._send(HTTPStatus.BAD_REQUEST, str(err), "text/plain; charset=utf-8")
            finally:
                with saves_lock:
                    saves[0] += 1
            loc = "/human-eval?" + urllib.parse.urlencode({**o.query(), "reviewer": reviewer, "saved": doc}) + "#doc-" + urllib.parse.quote(doc)
            self._send(HTTPStatus.SEE_OTHER, f'<a href="{html.escape(loc)}">saved</a>', extra_headers={"Location": loc})

    srv = ReportServer((host, port), Handler, max_in_flight=max_in_flight)
    srv.page_cache = cache
    real_port = srv.server_address[1]
    names = {"127.0.0.1", "localhost", "[::1]", host if ":" not in host else f"[{host}]", *allowed_hosts}
    srv.allowed = {f"{h.lower()}:{real_port}" for h in names}
    srv.origins = {f"http://{h}" for h in srv.allowed}
    return srv


def serve(run_dirs: list[str], host: str, port: int, allow_remote: bool, allowed_hosts: list[str], eval_samples: int,
          shards: str | None, train: list[str], quality_eval: list[str], ablation: list[str] = (), compare: bool = False,
          samples: int = 5) -> int:
    if not is_loopback(host) and not allow_remote:
        raise CorpusforgeError("remote_refused", f"--host {host} is not a loopback address; add --allow-remote to serve it "
                               "(ratings can be written by anyone who reaches the port)")
    reports = [RunReport(d, shards if i == 0 else None, eval_samples=eval_samples) for i, d in enumerate(run_dirs)]
    extra = gather_extra(run_dirs, [r.found for r in reports], train, quality_eval, ablation)
    if compare:
        extra["compare"] = compare_runs(run_dirs[0], run_dirs[1], samples, eval_samples, None, progress=True)
    other = reports[1] if compare else None
    try:
        srv = make_server(reports[0], extra, host, port, allowed_hosts, other=other)
    except OSError as err:
        raise CorpusforgeError("serve_failed", f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    if not is_loopback(host):
        print(f"report serve: WARNING: listening on {host}, reachable from other machines; no authentication "
              "beyond the form token", file=sys.stderr, flush=True)
    shown = host if ":" not in host else f"[{host}]"
    pages = ("human evaluation: /human-eval, documents: /browse" + (", comparison: /compare" if compare else "")
             + (", ablation: /ablation" if extra["ablation"] else ""))
    print(f"serving http://{shown}:{srv.server_address[1]}/ ({pages}; Ctrl-C to stop)", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0
