"""The HTTP layer: a stdlib ThreadingHTTPServer speaking keep-alive HTTP/1.1.

pyairtable reuses connections through a ``requests.Session``, so the server must send a
correct Content-Length and keep connections open; a "lost response" is simulated by
closing the connection without writing a byte, which the server survives by design.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .wire import CONTROL_PREFIX, JSON_CONTENT_TYPE, ApiRequest, Service

#: Bodies up to this size are read and discarded before a 413, so the client gets the
#: answer instead of a connection reset; larger ones just get the connection closed.
_DRAIN_LIMIT = 64 * 1024 * 1024


class EmulatorHTTPServer(ThreadingHTTPServer):
    """Serves one :class:`~airtable_emulator.wire.Service` (the emulator) and can drop every
    open connection on stop."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], service: Service) -> None:
        self.service = service
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down idle keep-alive connections so a stopped emulator answers nothing."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (or are hung up on) are normal here; anything else is not."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: Headers and body go out in separate writes; without this, Nagle plus delayed ACKs
    #: add ~40 ms to every keep-alive request and distort latency measurements.
    disable_nagle_algorithm = True
    server_version = "airtable-emulator"
    sys_version = ""
    #: Idle keep-alive connections are closed after this many seconds.
    timeout = 120
    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging; the stats and write log are the record."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        split = urlsplit(self.path)
        emulator = self.server.service
        length = self._content_length()
        if length is None:
            return
        if split.path.startswith(CONTROL_PREFIX):
            status, payload = emulator.control(self.command, split.path, self.rfile.read(length))
            self._send(status, payload)
            return
        if length > emulator.max_body_bytes:
            self._discard(length)
            reply = emulator.reject_too_large()
            self._send(reply.status, reply.body, reply.content_type)
            return
        request = ApiRequest(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            authorization=self.headers.get("Authorization"),
            body=self.rfile.read(length),
            arrived=emulator.clock(),
            url_length=len(self.path),
        )
        reply = emulator.handle(request)
        if reply.drop:
            self.close_connection = True  # the client sees the connection close, no answer
            return
        self._send(reply.status, reply.body, reply.content_type)

    def _content_length(self) -> int | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send(411, {"error": "the emulator needs a Content-Length"})
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(400, {"error": "invalid Content-Length"})
            return None
        return length

    def _discard(self, length: int) -> None:
        if length > _DRAIN_LIMIT:
            self.close_connection = True
            return
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1024 * 1024))
            if not chunk:
                self.close_connection = True
                return
            remaining -= len(chunk)

    def _send(self, status: int, payload: Any, content_type: str = JSON_CONTENT_TYPE) -> None:
        if content_type == JSON_CONTENT_TYPE:
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        else:
            data = str(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
