"""Minimal WSGI request/response types for the WFE (the server library is cheroot)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from ca_stub.contracts import CAError

__all__ = ["MAX_BODY", "Request", "Response", "json_response", "read_request"]

MAX_BODY = 64 * 1024  # an ACME request is a few KiB; a CSR for 100 names stays far below this

_REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
    415: "Unsupported Media Type", 429: "Too Many Requests", 500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def path_with_query(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")


@dataclasses.dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def header(self, name: str, value: str) -> Response:
        self.headers.append((name, value))
        return self

    def link(self, url: str, rel: str) -> Response:
        return self.header("Link", f'<{url}>;rel="{rel}"')

    def wsgi_status(self) -> str:
        return f"{self.status} {_REASONS.get(self.status, 'Status')}"

    def wsgi_headers(self) -> list[tuple[str, str]]:
        """The headers with ``Content-Length`` (none on 204, RFC 9110 §8.6). Without it cheroot sends
        the body chunked (three TLS records instead of one) and closes the connection after a HEAD,
        so that the client's next request pays a new TLS handshake."""
        if self.status == 204 or any(name.lower() == "content-length" for name, _ in self.headers):
            return self.headers
        return [*self.headers, ("Content-Length", str(len(self.body)))]


def json_response(obj: Any, status: int = 200, content_type: str = "application/json") -> Response:
    """``obj`` as compact JSON: ``indent`` would send every answer through the pure-Python encoder,
    a tenth of the WFE's time under load (benchmarks/README.md)."""
    body = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
    return Response(status, body, [("Content-Type", content_type)])


def read_request(environ: Mapping[str, Any]) -> Request:
    """Read the request; a body over ``MAX_BODY`` is refused before it is read whole."""
    headers = {
        key[5:].replace("_", "-").lower(): str(value) for key, value in environ.items() if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError as err:
        raise CAError("malformed", "Content-Length is not a number") from err
    if length > MAX_BODY:
        raise CAError("malformed", f"request body of {length} bytes is over the {MAX_BODY}-byte limit", status=413)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    return Request(
        method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
        path=str(environ.get("PATH_INFO", "/")) or "/",
        query=str(environ.get("QUERY_STRING", "")),
        headers=headers,
        body=body,
    )

