"""A loopback TCP proxy in front of the S3 server that misbehaves like a busy store: of the connections it
accepts, a seeded share is reset at once (RST) and another share gets `503 SlowDown` to its first request,
each up to a bound; the rest are piped through untouched."""

from __future__ import annotations

import random
import socket
import struct
import threading

_SLOWDOWN = (b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s")
_BODY = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"


class FaultProxy:
    def __init__(self, upstream_port: int, seed: int = 25, reset: float = 0.05, slowdown: float = 0.05, bound: int = 8):
        self.upstream = ("127.0.0.1", upstream_port)
        self.rng, self.lock = random.Random(seed), threading.Lock()
        self.p_reset, self.p_slow, self.bound = reset, slowdown, bound
        self.resets = self.slowdowns = self.connections = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop = True
        self.sock.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                r = self.rng.random()
                fault = ("reset" if r < self.p_reset and self.resets < self.bound else
                         "slow" if r < self.p_reset + self.p_slow and self.slowdowns < self.bound else None)
                self.resets += fault == "reset"
                self.slowdowns += fault == "slow"
            threading.Thread(target=self._serve, args=(c, fault), daemon=True).start()

    def _serve(self, c: socket.socket, fault: str | None) -> None:
        if fault == "reset":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
            return
        if fault == "slow":
            head = b""
            while b"\r\n\r\n" not in head:  # read the request head, answer 503, drop the connection
                chunk = c.recv(65536)
                if not chunk:
                    break
                head += chunk
            try:
                c.sendall(_SLOWDOWN % (len(_BODY), _BODY))
            finally:
                c.close()
            return
        u = socket.create_connection(self.upstream)
        threading.Thread(target=_pipe, args=(u, c), daemon=True).start()
        _pipe(c, u)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
