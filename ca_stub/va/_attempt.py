"""One validation's bookkeeping: its deadline, what it contacted, and how it failed.

Private to ``ca_stub.va``. A :class:`Failure` carries the RFC 8555 §6.7 problem type
(``connection``, ``dns``, ``tls``, ``unauthorized``, ``incorrectResponse``, ...) and a detail
that names what was fetched and what was found; the authority turns it into the challenge's
``error``.

Imports: stdlib only.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import time

__all__ = ["Attempt", "Failure", "host_port", "quote"]

_SHOWN = 80  # characters of a fetched value quoted in a detail


class Failure(Exception):
    """The challenge is not proven: ``problem_type`` without the URN prefix, and why."""

    def __init__(self, problem_type: str, detail: str) -> None:
        self.problem_type = problem_type
        self.detail = detail
        super().__init__(f"{problem_type}: {detail}")


@dataclasses.dataclass(slots=True)
class Attempt:
    """The deadline (``time.monotonic`` seconds) of one validation and the records it made.

    Owned by the one worker thread running that validation; never shared.
    """

    deadline: float
    records: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def starting_now(cls, timeout: float) -> Attempt:
        return cls(time.monotonic() + timeout)

    def remaining(self, before: str) -> float:
        """Seconds left, or ``Failure(connection)`` saying what could not be done in time."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Failure("connection", f"timed out before {before}")
        return left

    def note(self, record: str) -> None:
        self.records.append(record)


def quote(value: bytes | str) -> str:
    """What a validator found, quoted and truncated so that an HTML page cannot flood a detail."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return repr(text[:_SHOWN]) + ("..." if len(text) > _SHOWN else "")


def host_port(host: str, port: int) -> str:
    """``127.0.0.1:80``, ``[::1]:443``, ``example.com:80``."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"{host}:{port}"
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
