"""HTTP transport for the ACME client: one kept-alive connection per origin, and response checking.

Every way a response can be wrong ends here as a typed error naming the URL: a problem document
becomes a ``ProblemError`` (or the subclass for its type), anything else that is not what the
endpoint must return becomes ``UnexpectedResponse``, and no answer at all becomes ``NetworkError``.

Why not ``requests`` (nor ``http.client``): a client run is a few to a few hundred requests to one
origin, and it is mostly start-up. ``requests`` (with urllib3, idna, charset-normalizer, the cookie
jar) cost a run about 60 ms of imports and about 1 ms of CPU per request merging settings,
cookies and proxies; ``http.client`` still parses each answer's head with the ``email`` package.
``_wire`` speaks HTTP/1.1 on one socket for a fraction of that. What ``requests`` gave us is kept
here, on purpose and tested (tests/unit/acme/test_http_transport.py):

- Trust anchor: ``verify`` is a bundle (file or hashed directory), ``True`` or ``False``. With
  ``True`` the environment's ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` is used when set (read
  once, when the transport is made), else the system's store (OpenSSL's default paths, which honour
  ``SSL_CERT_FILE``/``SSL_CERT_DIR``). An explicit bundle always wins over the environment.
- Proxies from ``https_proxy``/``http_proxy``/``all_proxy`` and ``no_proxy`` (as ``urllib``
  reads them), looked up once per origin; HTTPS goes through a CONNECT tunnel, with
  ``Proxy-Authorization`` when the proxy URL carries credentials.
- One kept-alive connection per origin. A connection the server has closed while idle is noticed
  before it is used; a request that finds it closed anyway is sent once more on a new connection
  (an ACME POST is safe to resend: its nonce makes the server refuse a duplicate).
- One total deadline (``timeout``) per exchange, connect to last body byte, so a trickling server
  cannot stall a run; answers over 16 MiB are refused; no redirect is followed.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import ssl
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from letsencrypt.acme import _wire, errors
from letsencrypt.acme.ari import parse_retry_after
from letsencrypt.acme.messages import Problem

__all__ = ["USER_AGENT", "HttpTransport", "PreparedRequest", "Response", "check_response", "json_body", "links"]

logger = logging.getLogger(__name__)

VERSION = "0.1.0"
MAX_RESPONSE = 16 * 2**20  # a certificate chain or order list is kilobytes; a bigger answer is not ACME
USER_AGENT = f"letsencrypt-acme/{VERSION} Python/{sys.version_info.major}.{sys.version_info.minor}"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The server went away between two requests on a kept-alive connection: resend once on a new one.
_STALE = (_wire.ConnectionClosed, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)

_PROBLEM_TYPES: dict[str, type[errors.ProblemError]] = {
    "badNonce": errors.BadNonceError,
    "userActionRequired": errors.UserActionRequired,
    "rateLimited": errors.RateLimited,
    "accountDoesNotExist": errors.AccountDoesNotExist,
}

_LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[^;,"=\s]+\s*(?:=\s*(?:"[^"]*"|[^;,]*))?)*)')
# One link-param at a time, so that a quoted value ("a; rel=x, b") is never read as a param.
_LINK_PARAM = re.compile(r'\s*;\s*([^;,"=\s]+)\s*(?:=\s*(?:"([^"]*)"|([^;,]*)))?')


class Response:
    """One answer, whole: status, headers (case-insensitive ``get``, ``get_all``), body and URL."""

    __slots__ = ("content", "headers", "status_code", "url")

    def __init__(self, status_code: int, headers: _wire.Headers, content: bytes, url: str) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.url = url

    def __repr__(self) -> str:
        return f"<Response {self.status_code} from {self.url}>"


class PreparedRequest:
    """One request for :meth:`HttpTransport.pipeline`."""

    __slots__ = ("accept", "body", "content_type", "method", "note", "url")

    def __init__(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str | None = None,
        note: str = "",
    ) -> None:
        self.method, self.url, self.body, self.content_type, self.accept = method, url, body, content_type, accept
        self.note = note  # said in the request's one DEBUG log line (e.g. the redacted payload)


class _Proxy:
    __slots__ = ("headers", "host", "port")

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port, self.headers = host, port, headers


class HttpTransport:
    """Sends requests with the User-Agent, the trust anchor and the deadline on every one."""

    def __init__(self, *, verify: bool | str = True, timeout: float = 30.0, user_agent: str = USER_AGENT) -> None:
        if verify is True:  # the environment's bundle, as requests and curl pick it, read once
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.verify = verify
        self.timeout = timeout
        self.user_agent = user_agent
        self._context: ssl.SSLContext | None = None
        self._connections: dict[tuple[str, str, int], _wire.Connection] = {}
        self._proxies: dict[tuple[str, str], _Proxy | None] = {}

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str | None = None,
    ) -> Response:
        deadline = time.monotonic() + self.timeout
        scheme, host, port, target = self._split(method, url)
        key = (scheme, host, port)
        for attempt in range(2):
            reused = False
            try:
                connection = self._connection(key, url)
                reused = connection.is_open
                request_target, headers = self._wire_form(scheme, host, url, target, accept, content_type)
                answer = connection.exchange(
                    method, request_target, headers, body, deadline=deadline, max_body=MAX_RESPONSE
                )
            except _STALE as err:
                self._drop(key)
                if reused and attempt == 0:
                    logger.debug(
                        "%s %s: the kept-alive connection was closed (%r); once more on a new one", method, url, err
                    )
                    continue
                raise errors.NetworkError(
                    f"{method} {url}: the server closed the connection without an answer", url=url
                ) from err
            except (errors.AcmeError, _wire.ProtocolError, _wire.TooLarge, OSError, ValueError) as err:
                self._drop(key)  # ValueError: a header or target the wire refused
                if isinstance(err, errors.AcmeError):
                    raise
                raise self._failure(method, url, err) from err
            response = Response(answer.status, answer.headers, answer.body, url)
            logger.debug("%s %s -> %s %s", method, url, response.status_code, response.headers.get("Content-Type"))
            return response
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _failure(self, method: str, url: str, err: Exception) -> errors.AcmeError:
        """The typed error for an exchange that failed below HTTP (the connection is dropped already)."""
        if isinstance(err, _wire.SlowAnswer):
            return errors.NetworkError(f"{method} {url}: the answer took over {self.timeout:g} s", url=url)
        if isinstance(err, TimeoutError):
            return errors.NetworkError(f"{method} {url}: no answer within {self.timeout:g} s", url=url)
        if isinstance(err, ssl.SSLError):
            reason = f"{err.reason or err}"
            if isinstance(err, ssl.SSLCertVerificationError) and err.verify_message:  # what was wrong, in words
                reason += f": {err.verify_message}"
            return errors.NetworkError(
                f"{method} {url}: TLS failure ({reason}); is the CA's trust anchor right?", url=url
            )
        if isinstance(err, _wire.TooLarge):
            return errors.UnexpectedResponse(
                f"{method} {url}: the answer is over {MAX_RESPONSE // 2**20} MiB", url=url, status=err.status
            )
        return errors.NetworkError(f"{method} {url}: {err or type(err).__name__}", url=url)

    def _wire_form(
        self, scheme: str, host: str, url: str, target: str, accept: str | None, content_type: str | None
    ) -> tuple[str, list[tuple[str, str]]]:
        """The request target and header fields as sent: a plain-HTTP proxy is asked for the whole URL."""
        headers = [("User-Agent", self.user_agent), ("Accept", accept or "*/*"), ("Accept-Language", "en")]
        if content_type:
            headers.append(("Content-Type", content_type))
        proxy = self._proxy(scheme, host)
        if proxy is not None and scheme == "http":
            return url, headers + list(proxy.headers.items())
        return target, headers

    def pipeline(
        self,
        count: int,
        prepare: Callable[[int], PreparedRequest | None],
        received: Callable[[int, Response], None],
        *,
        window: int,
    ) -> int:
        """Send ``count`` requests to one origin with up to ``window`` of them awaiting an answer.

        One thread, one connection: the server works on request ``i + 1`` while this process
        signs request ``i + window`` and reads answer ``i`` (on two cores, that is most of a
        sequential run's waiting gone). ``prepare(i)`` makes request ``i`` when it is about to be
        sent (``None``: no more), ``received(i, response)`` gets the answers in order. Returns how
        many were answered; the others (the server closed the connection, answered out of turn
        or not at all) are the caller's to send with :meth:`request`, which reports errors.
        """
        if count <= 0:
            return 0
        first = prepare(0)
        if first is None:
            return 0
        scheme, host, port, _ = self._split(first.method, first.url)
        key = (scheme, host, port)
        # "scheme://authority" of the first URL as urlsplit reads it (not cut at the first "/":
        # the URL may have no path, or a query before one): a URL starting with it and "/" (and
        # no fragment) is split by slicing, the others by urlsplit (most of the per-request cost
        # of this loop otherwise). A first URL not written so (upper-case scheme): urlsplit for all.
        parts = urlsplit(first.url)
        written = f"{parts.scheme}://{parts.netloc}"
        origin = written if first.url.startswith(written) else None
        requests: list[PreparedRequest] = []

        def wire_request(index: int) -> tuple[str, str, list[tuple[str, str]], bytes | None] | None:
            request = first if index == 0 else prepare(index)
            if request is None:
                return None
            url = request.url
            if origin and url.startswith(origin) and url[len(origin) : len(origin) + 1] == "/" and "#" not in url:
                target = url[len(origin) :]
            else:
                req_scheme, req_host, req_port, target = self._split(request.method, url)
                if (req_scheme, req_host, req_port) != key:
                    return None  # another origin: left to request()
            target, headers = self._wire_form(scheme, host, url, target, request.accept, request.content_type)
            requests.append(request)
            return request.method, target, headers, request.body

        def wire_received(index: int, answer: _wire.Answer) -> None:
            request = requests[index]
            response = Response(answer.status, answer.headers, answer.body, request.url)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s %s%s -> %s %s (pipelined)", request.method, request.url, request.note, response.status_code,
                    answer.headers.get("Content-Type"),
                )  # fmt: skip
            received(index, response)

        connection = self._connection(key, first.url)
        try:
            answered = connection.pipeline(
                count, wire_request, wire_received, window=window, timeout=self.timeout, max_body=MAX_RESPONSE
            )
        except BaseException:  # from prepare or received: requests may still be in flight
            self._drop(key)
            raise
        if answered < count:
            logger.debug(
                "pipelined %d of %d requests to %s://%s:%d; the rest go one by one", answered, count, scheme, host, port
            )
        return answered

    @staticmethod
    def _split(method: str, url: str) -> tuple[str, str, int, str]:
        try:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            port = parts.port
        except ValueError as err:
            raise errors.NetworkError(f"{method} {url}: not a valid URL ({err})", url=url) from err
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise errors.NetworkError(f"{method} {url}: not an http:// or https:// URL", url=url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return scheme, parts.hostname, port or _DEFAULT_PORTS[scheme], target

    def _connection(self, key: tuple[str, str, int], url: str) -> _wire.Connection:
        """The origin's connection; one the server closed while it was idle is closed here too."""
        connection = self._connections.get(key)
        if connection is not None and connection.closed_by_peer():
            connection.close()  # opened again by the next exchange
        if connection is None:
            scheme, host, port = key
            proxy = self._proxy(scheme, host)
            context = self._ssl_context(f"{scheme}://{host}:{port}") if scheme == "https" else None
            via = None if proxy is None else (proxy.host, proxy.port, proxy.headers)
            connection = self._connections[key] = _wire.Connection(host, port, tls=context, proxy=via)
        return connection

    def _ssl_context(self, origin: str) -> ssl.SSLContext:
        if self._context is None:
            verify = self.verify
            try:
                if verify is False:
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                elif isinstance(verify, str) and os.path.isdir(verify):
                    context = ssl.create_default_context(capath=verify)
                elif isinstance(verify, str):
                    context = ssl.create_default_context(cafile=verify)
                else:
                    context = ssl.create_default_context()
            except (OSError, ssl.SSLError) as err:
                raise errors.NetworkError(
                    f"{origin}: cannot use the trust anchor bundle {verify}: {getattr(err, 'strerror', None) or err}",
                    url=origin,
                ) from err
            self._context = context
        return self._context

    def _proxy(self, scheme: str, host: str) -> _Proxy | None:
        """The proxy for an origin from the environment (as ``urllib`` reads it), looked up once."""
        if (scheme, host) not in self._proxies:
            self._proxies[scheme, host] = _proxy_from_environment(scheme, host)
        return self._proxies[scheme, host]

    def _drop(self, key: tuple[str, str, int]) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()


def _proxy_from_environment(scheme: str, host: str) -> _Proxy | None:
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return None  # the usual case, without importing urllib.request
    import urllib.request  # a tenth of start-up: only when a proxy may be set

    proxies = urllib.request.getproxies_environment()
    if urllib.request.proxy_bypass(host):  # no_proxy (the environment's, on this platform)
        return None
    address = proxies.get(scheme) or proxies.get("all")
    if not address:
        return None
    parts = urlsplit(address if "://" in address else f"http://{address}")
    if parts.scheme != "http" or not parts.hostname:
        raise errors.NetworkError(
            f"proxy {address} (from the environment) for {scheme}://{host}: only http:// proxies are supported",
            url=f"{scheme}://{host}",
        )
    headers: dict[str, str] = {}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
    return _Proxy(parts.hostname, parts.port or 80, headers)


def _media_type(response: Response) -> str:
    return (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def _snippet(response: Response) -> str:
    text = response.content[:200].decode("utf-8", "replace")
    text = re.sub(r"\s+", " ", text).strip()
    return text + ("..." if len(response.content) > 200 else "")


def links(response: Response) -> dict[str, list[str]]:
    """All ``Link`` header targets by relation, absolute, in order (RFC 8288; several per rel)."""
    out: dict[str, list[str]] = {}
    for header in _values(response.headers.get_all("Link")):
        for match in _LINK.finditer(header):
            target, params = match.group(1), match.group(2)
            for name, quoted, token in _LINK_PARAM.findall(params):
                if name.lower() != "rel":
                    continue
                for rel in (quoted or token).split():
                    out.setdefault(rel.lower(), []).append(urljoin(response.url, target))
    return out


def _values(values: Iterable[Any] | None) -> list[str]:
    return [str(value) for value in values or ()]


def problem_error(response: Response, url: str) -> errors.ProblemError | None:
    """The typed error for a problem document, or ``None`` when the body is not one."""
    media_type = _media_type(response)
    if media_type not in ("application/problem+json", "application/json"):
        return None
    try:
        document = json.loads(response.content)
        if not isinstance(document, Mapping) or "type" not in document:
            return None
        problem = Problem.from_json(document)
    except (ValueError, UnicodeDecodeError, RecursionError, errors.MessageError):  # too deep: not a problem
        return None
    cls = _PROBLEM_TYPES.get(problem.short_type, errors.ProblemError)
    if cls is errors.UserActionRequired:
        terms = links(response).get("terms-of-service", [None])[0]
        return errors.UserActionRequired(problem, url=url, status=response.status_code, terms_of_service=terms)
    if cls is errors.RateLimited:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return errors.RateLimited(problem, url=url, status=response.status_code, retry_after=retry_after)
    return cls(problem, url=url, status=response.status_code)


def check_response(response: Response, url: str) -> None:
    """Raise the typed error for a failed response; return for 2xx."""
    if 200 <= response.status_code < 300:
        return
    problem = problem_error(response, url)
    if problem is not None:
        raise problem
    raise errors.UnexpectedResponse(
        f"HTTP {response.status_code} from {url} without a problem document"
        f" ({_media_type(response) or 'no content type'}): {_snippet(response) or 'empty body'}",
        url=url,
        status=response.status_code,
        content_type=_media_type(response),
    )


def json_body(response: Response, url: str) -> Any:
    """The JSON body of a successful response, or ``UnexpectedResponse`` saying what came instead."""
    media_type = _media_type(response)
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise errors.UnexpectedResponse(
            f"expected JSON from {url}, got {media_type or 'no content type'}"
            f" (HTTP {response.status_code}): {_snippet(response) or 'empty body'}",
            url=url,
            status=response.status_code,
            content_type=media_type,
        )
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:  # RecursionError: nested too deep
        raise errors.UnexpectedResponse(
            f"invalid JSON from {url} (HTTP {response.status_code}): {err}",
            url=url,
            status=response.status_code,
            content_type=media_type,
        ) from err


def redact(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A copy for DEBUG logs: EAB MACs and anything key-like left out."""
    out = dict(payload)
    for key in ("externalAccountBinding", "d", "p", "q", "dp", "dq", "qi", "k"):
        if key in out:
            out[key] = "<redacted>"
    return out
