"""`corpusforge report serve` under load, on a real pipeline run: 200 concurrent GETs of `/` and of
the human-evaluation page all answer 200 with one body per page, each page rendered once per run
state; a rating POSTed the way the form does re-renders the next GET; clients that drop or stall
mid-request are one log line each, never a traceback. No wall-clock assertions."""

from __future__ import annotations

import re
import socket
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from corpusforge.report import human_eval, serve
from corpusforge.report.build import RunReport, gather_extra
from tests.browser.report_run import make_run
from tests.util import REPO_ROOT

N = 200
SAFETY = 120  # client timeout (a hang fails instead of blocking the suite); not a latency assertion


@pytest.fixture(scope="module")
def run_dir(shared_data, tmp_path_factory):
    return make_run(shared_data, tmp_path_factory.mktemp("serve"), sources=("web", "luxun", "hostile"))


@pytest.fixture
def counted(monkeypatch):
    """Count the real renders: serve's page() (the report) and eval_page() (human evaluation)."""
    calls = {"page": 0, "eval_page": 0}
    lock = threading.Lock()

    def wrap(name):
        real = getattr(serve, name)

        def counting(*a, **kw):
            with lock:
                calls[name] += 1
            return real(*a, **kw)
        monkeypatch.setattr(serve, name, counting)
    wrap("page")
    wrap("eval_page")
    return calls


@pytest.fixture
def server(run_dir, counted, monkeypatch):
    monkeypatch.setattr(serve, "CONN_TIMEOUT", 1.0)  # the stall test waits for it; before make_server reads it
    r = RunReport(str(run_dir), eval_samples=4)
    srv = serve.make_server(r, gather_extra([str(run_dir)], [r.found]), "127.0.0.1", 0)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield srv, r, f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        (run_dir / human_eval.FILE).unlink(missing_ok=True)


def _get(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=SAFETY) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _no_traceback(err: str) -> None:
    assert "Traceback" not in err, err[-3000:]
    assert all(line.startswith("report serve: ") for line in err.splitlines()), err[-3000:]


def test_concurrent_gets_render_once_and_a_rating_rerenders(server, counted, capfd):
    srv, r, base = server
    urls = [base + ("/" if i % 2 else "/human-eval") for i in range(2 * N)]  # 200 of each, interleaved
    with ThreadPoolExecutor(max_workers=100) as pool:
        got = list(pool.map(_get, urls))
    for path in ("/", "/human-eval"):
        answers = [g for u, g in zip(urls, got) if u == base + path]
        assert len(answers) == N and all(code == 200 for code, _ in answers), sorted({c for c, _ in answers})
        assert len({body for _, body in answers}) == 1, path
    assert counted == {"page": 1, "eval_page": 1}
    report_body = next(b for u, (_, b) in zip(urls, got) if u == base + "/").decode()
    eval_body = next(b for u, (_, b) in zip(urls, got) if u == base + "/human-eval").decode()
    assert 'data-ratings="0"' in eval_body and '<a href="/human-eval">' in report_body

    # a rating POSTed as the form does (fields in form order; urllib follows the 303 like a browser)
    token = re.search(r'name="token" value="([^"]+)"', eval_body).group(1)
    doc = r.data["eval_samples"][0]["id"]
    form = urllib.parse.urlencode([("token", token), ("doc_id", doc), ("reviewer", "ann"), ("fluency", "2"), ("flags", "ads")]).encode()
    code, body = _get(base + "/human-eval", form)
    assert code == 200 and "saved rating of" in body.decode()
    assert counted["eval_page"] == 2  # the redirect target (reviewer=ann, saved=doc)
    code, body = _get(base + "/human-eval")
    assert code == 200 and 'data-ratings="1"' in body.decode() and "(low quality 1)" in body.decode()
    assert counted["eval_page"] == 3
    assert _get(base + "/human-eval") == (code, body) and counted["eval_page"] == 3  # cached again
    # a second rating right after (possibly within one mtime tick) is seen too
    form2 = form.replace(b"fluency=2", b"fluency=5").replace(b"&flags=ads", b"")
    assert _get(base + "/human-eval", form2)[0] == 200
    code, body = _get(base + "/human-eval?reviewer=ann")
    assert code == 200 and "(low quality 0)" in body.decode() and 'value="5" required checked' in body.decode()
    assert human_eval.load(str(r.run_dir))["ratings"] == {doc: {"ann": {"fluency": 5, "flags": [], "rule": "kept"}}}
    # the report page carries the ratings aggregate, so it re-renders once too
    with ThreadPoolExecutor(max_workers=50) as pool:
        again = list(pool.map(_get, [base + "/"] * 50))
    assert {c for c, _ in again} == {200} and len({b for _, b in again}) == 1 and again[0][1] != report_body.encode()
    assert counted["page"] == 2
    _no_traceback(capfd.readouterr().err)


def _rst_close(s: socket.socket) -> None:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST: writes to it fail
    s.close()


def _drop_clients(port: int) -> None:
    host = f"127.0.0.1:{port}".encode()
    for i in range(20):
        s = socket.create_connection(("127.0.0.1", port), timeout=SAFETY)
        if i % 4 == 0:
            s.close()  # connect, send nothing
        elif i % 4 == 1:
            s.sendall(b"GET / HTTP/1.1\r\nHo")  # partial headers
            _rst_close(s)
        elif i % 4 == 2:
            s.sendall(b"GET /human-eval HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")  # whole request, gone before the answer
            _rst_close(s)
        else:
            s.sendall(b"POST /human-eval HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 500\r\n\r\ntoken=")  # body cut
            _rst_close(s)


def test_dropped_and_stalled_clients_log_no_traceback(server, capfd):
    srv, _, base = server
    port = srv.server_address[1]
    with ThreadPoolExecutor(max_workers=5) as pool:
        list(pool.map(_drop_clients, [port] * 5))
    # a client that stalls mid-headers is dropped by the server (CONN_TIMEOUT, 1 s here)
    s = socket.create_connection(("127.0.0.1", port), timeout=SAFETY)
    s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1")
    assert s.recv(1024) == b""  # the server closed it
    s.close()
    # the server still answers
    code, body = _get(base + "/")
    assert code == 200 and b"human evaluation" in body
    err = capfd.readouterr().err
    _no_traceback(err)
    assert "timed out" in err


def test_cli_server_drops_and_bursts_without_traceback(run_dir, tmp_path):
    """The real `corpusforge report serve` process: stderr captured whole."""
    errf = (tmp_path / "stderr.txt").open("w+")
    p = subprocess.Popen([sys.executable, "-m", "corpusforge", "report", "serve", str(run_dir), "--port", "0", "--eval-samples", "3"],
                         cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=errf, text=True)
    try:
        line = p.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, line
        port = int(m.group(1))
        base = f"http://127.0.0.1:{port}"
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(_drop_clients, [port] * 4))
        with ThreadPoolExecutor(max_workers=64) as pool:
            got = list(pool.map(_get, [base + "/human-eval"] * N))
        assert {c for c, _ in got} == {200} and len({b for _, b in got}) == 1
        assert p.poll() is None
    finally:
        p.terminate()
        p.wait(timeout=SAFETY)
        p.stdout.close()
    errf.seek(0)
    _no_traceback(errf.read())
    errf.close()
