"""Replay nonces for the WFE (RFC 8555 §6.5): issued at random, single use, expiring.

Held in memory by the WFE alone: a nonce outlives no restart (a client just gets ``badNonce``
and retries with the fresh one the error carries). The set is bounded, oldest dropped first.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from collections.abc import Callable

__all__ = ["NonceService"]


class NonceService:
    """Issue and redeem nonces; ``redeem`` is true once per issued, unexpired nonce."""

    def __init__(
        self, *, lifetime: float = 3600.0, capacity: int = 200_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lifetime = lifetime
        self._capacity = capacity
        self._clock = clock
        self._issued: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._lock = threading.Lock()

    def issue(self) -> str:
        nonce = secrets.token_urlsafe(16)
        with self._lock:
            self._issued[nonce] = self._clock() + self._lifetime
            while len(self._issued) > self._capacity:
                self._issued.popitem(last=False)
        return nonce

    def redeem(self, nonce: object) -> bool:
        if not isinstance(nonce, str):
            return False
        with self._lock:
            expires = self._issued.pop(nonce, None)
        return expires is not None and expires > self._clock()
