"""HTTP transport for the ACME client: one ``requests`` session, and response checking.

Every way a response can be wrong ends here as a typed error naming the URL: a problem document
becomes a ``ProblemError`` (or the subclass for its type), anything else that is not what the
endpoint must return becomes ``UnexpectedResponse``, and no answer at all becomes ``NetworkError``.

About ``verify``: requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` replace a session's own
``verify`` whenever ``trust_env`` is on. The session here has ``trust_env`` off and the trust
anchor is passed with every request: an explicit bundle (the test CA's) always wins, and the
environment's bundle (read once, when the transport is made) is used only when the caller gave
none. Proxies from the environment are still honoured, looked up once per origin.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from letsencrypt.acme import errors
from letsencrypt.acme.ari import parse_retry_after
from letsencrypt.acme.messages import Problem

__all__ = ["USER_AGENT", "HttpTransport", "check_response", "json_body", "links"]

logger = logging.getLogger(__name__)

VERSION = "0.1.0"
MAX_RESPONSE = 16 * 2**20  # a certificate chain or order list is kilobytes; a bigger answer is not ACME
USER_AGENT = f"letsencrypt-acme/{VERSION} python-requests/{requests.__version__}"

_PROBLEM_TYPES: dict[str, type[errors.ProblemError]] = {
    "badNonce": errors.BadNonceError,
    "userActionRequired": errors.UserActionRequired,
    "rateLimited": errors.RateLimited,
    "accountDoesNotExist": errors.AccountDoesNotExist,
}

_LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[^;,"=\s]+\s*(?:=\s*(?:"[^"]*"|[^;,]*))?)*)')
# One link-param at a time, so that a quoted value ("a; rel=x, b") is never read as a param.
_LINK_PARAM = re.compile(r'\s*;\s*([^;,"=\s]+)\s*(?:=\s*(?:"([^"]*)"|([^;,]*)))?')


class HttpTransport:
    """Sends requests with the User-Agent, the trust anchor and the timeout on every one."""

    def __init__(
        self,
        *,
        verify: bool | str = True,
        timeout: float = 30.0,
        user_agent: str = USER_AGENT,
        session: requests.Session | None = None,
    ) -> None:
        if verify is True:  # the environment's bundle, as requests would pick it, read once
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.verify = verify
        self.timeout = timeout
        self.session = session or requests.Session()
        # requests re-reads proxies and ~/.netrc from the environment on every request (a tenth of
        # a client's time over hundreds of requests); proxies are looked up once per origin instead.
        self.session.trust_env = False
        self.session.headers["User-Agent"] = user_agent
        self.session.headers["Accept-Language"] = "en"
        self._proxies: dict[tuple[str, str], dict[str, str]] = {}

    def _proxies_for(self, url: str) -> dict[str, str]:
        origin = urlsplit(url)[:2]
        if origin not in self._proxies:
            self._proxies[origin] = requests.utils.get_environ_proxies(url)
        return self._proxies[origin]

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str | None = None,
    ) -> requests.Response:
        headers: dict[str, str] = {}
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        started = time.monotonic()
        try:
            response = self.session.request(
                method, url, data=body, headers=headers, timeout=self.timeout, verify=self.verify,
                allow_redirects=False, stream=True, proxies=self._proxies_for(url),
            )
            with response:
                response._content = self._read_body(response, method, url, started)
        except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError) as err:
            raise errors.NetworkError(f"{method} {url}: no answer within {self.timeout:g} s", url=url) from err
        except requests.exceptions.SSLError as err:
            raise errors.NetworkError(
                f"{method} {url}: TLS failure ({_root_cause(err)}); is the CA's trust anchor right?", url=url
            ) from err
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as err:
            raise errors.NetworkError(f"{method} {url}: {_root_cause(err)}", url=url) from err
        except OSError as err:  # e.g. requests: "Could not find a suitable TLS CA certificate bundle"
            raise errors.NetworkError(f"{method} {url}: {err}", url=url) from err
        logger.debug("%s %s -> %s %s", method, url, response.status_code, response.headers.get("Content-Type"))
        return response

    def _read_body(self, response: requests.Response, method: str, url: str, started: float) -> bytes:
        """The whole body, within ``timeout`` in total (a trickling server cannot stall us) and
        at most ``MAX_RESPONSE`` bytes."""
        chunks: list[bytes] = []
        size = 0
        while chunk := response.raw.read1(64 * 1024, decode_content=True):  # returns what has arrived
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_RESPONSE:
                raise errors.UnexpectedResponse(
                    f"{method} {url}: the answer is over {MAX_RESPONSE // 2**20} MiB", url=url,
                    status=response.status_code,
                )
            if time.monotonic() - started > self.timeout:
                raise errors.NetworkError(f"{method} {url}: the answer took over {self.timeout:g} s", url=url)
        return b"".join(chunks)

    def close(self) -> None:
        self.session.close()


def _root_cause(err: BaseException) -> str:
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__  # type: ignore[assignment]  # loop ends at a non-None
    return str(err) or type(err).__name__


def _media_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower()


def _snippet(response: requests.Response) -> str:
    text = response.content[:200].decode("utf-8", "replace")
    text = re.sub(r"\s+", " ", text).strip()
    return text + ("..." if len(response.content) > 200 else "")


def links(response: requests.Response) -> dict[str, list[str]]:
    """All ``Link`` header targets by relation, absolute, in order (RFC 8288; several per rel)."""
    out: dict[str, list[str]] = {}
    for header in _header_values(response, "Link"):
        for match in _LINK.finditer(header):
            target, params = match.group(1), match.group(2)
            for name, quoted, token in _LINK_PARAM.findall(params):
                if name.lower() != "rel":
                    continue
                for rel in (quoted or token).split():
                    out.setdefault(rel.lower(), []).append(urljoin(response.url or "", target))
    return out


def _header_values(response: requests.Response, name: str) -> list[str]:
    raw = getattr(response.raw, "headers", None)
    if raw is not None and hasattr(raw, "getlist"):
        values: list[str] = raw.getlist(name)
        if values:
            return values
    value = response.headers.get(name)
    return [value] if value else []


def problem_error(response: requests.Response, url: str) -> errors.ProblemError | None:
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


def check_response(response: requests.Response, url: str) -> None:
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


def json_body(response: requests.Response, url: str) -> Any:
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
