"""The anti-replay nonce pool (RFC 8555 §6.5).

Every response from the server may carry a ``Replay-Nonce``; the pool keeps them and hands each
out once. When it is empty the client asks ``newNonce`` (§7.2). A ``deque`` makes ``add`` and
``take`` safe from several threads without a lock.
"""

from __future__ import annotations

import collections
import re
from typing import Protocol

__all__ = ["NoncePool"]

_NONCE = re.compile(r"[A-Za-z0-9_-]+")


class _Headers(Protocol):
    def get(self, name: str, /) -> str | None: ...


class NoncePool:
    """Nonces seen in responses, newest first, at most ``size`` of them."""

    def __init__(self, size: int = 32) -> None:
        self._nonces: collections.deque[str] = collections.deque(maxlen=size)

    def add_from(self, headers: _Headers) -> None:
        """Keep the ``Replay-Nonce`` of a response; a value that is not base64url is ignored (§6.5.1)."""
        nonce = headers.get("Replay-Nonce")
        if nonce and _NONCE.fullmatch(nonce):
            self._nonces.append(nonce)

    def take(self) -> str | None:
        try:
            return self._nonces.pop()
        except IndexError:
            return None

    def __len__(self) -> int:
        return len(self._nonces)
