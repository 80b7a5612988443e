"""`corpusforge report serve RUN_DIR`: the report and a human-evaluation page on a stdlib
ThreadingHTTPServer. Loopback only unless --allow-remote; the Host header must name this server
(DNS rebinding); every response carries a strict CSP and no page has script; a rating POST needs
the per-process token that only our own form carries and, when the browser sends one, a same-origin
Origin header (cross-site form posts)."""

from __future__ import annotations

import html
import ipaddress
import secrets
import sys
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from corpusforge.errors import CorpusforgeError
from corpusforge.report import human_eval, render
from corpusforge.report.build import RunReport, gather_extra, page

MAX_BODY = 64 * 1024
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


def make_server(report: RunReport, extra: dict, host: str = "127.0.0.1", port: int = 8765,
                allowed_hosts: list[str] = ()) -> ThreadingHTTPServer:
    token = secrets.token_urlsafe(24)
    sample_ids = {d["id"] for d in report.data["eval_samples"]}

    class Handler(BaseHTTPRequestHandler):
        server_version = "corpusforge-report"
        sys_version = ""

        def log_message(self, fmt, *args):  # one short line per request on stderr
            sys.stderr.write(f"report serve: {self.address_string()} {fmt % args}\n")

        def _send(self, status: int, body: str = "", ctype: str = "text/html; charset=utf-8", extra_headers: dict | None = None):
            data = body.encode("utf-8")
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
            if url.path == "/":
                text = page([report], extra).replace("<nav>", '<nav><a href="/human-eval">human evaluation</a>', 1)
                self._send(HTTPStatus.OK, text)
            elif url.path == "/human-eval":
                self._send(HTTPStatus.OK, eval_page(report, token, (q.get("reviewer") or [""])[0][:64], (q.get("saved") or [None])[0]))
            else:
                self._send(HTTPStatus.NOT_FOUND, "not found", "text/plain; charset=utf-8")

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
            loc = "/human-eval?" + urllib.parse.urlencode({"reviewer": reviewer, "saved": doc}) + "#doc-" + urllib.parse.quote(doc)
            self._send(HTTPStatus.SEE_OTHER, f'<a href="{html.escape(loc)}">saved</a>', extra_headers={"Location": loc})

    srv = ThreadingHTTPServer((host, port), Handler)
    srv.daemon_threads = True
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
