"""A module imported when first used: ``x509 = lazy_module("cryptography.x509")``.

``cryptography.x509`` takes 25 to 45 ms to import (its name parser compiles regular expressions,
and it pulls in ``email.utils``), a tenth of a one-name ``certonly``, which does not need it at all
(its CSR and its checks of the certificate are DER: ``letsencrypt.acme._der``); renewal decisions,
``certificates`` and revocation do. ``cryptography.hazmat.primitives.serialization`` (its package
imports the OpenSSH key code) is loaded the same way. Modules that use it write::

    if TYPE_CHECKING:
        from cryptography import x509
    else:
        x509 = lazy_module("cryptography.x509")

and keep their ``x509.Name(...)`` code: the first attribute read imports the module (under the import
system's lock, so two threads never import it twice), and each attribute is then cached on the proxy.
Module-level code must not read an attribute, or the import happens at start-up again.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["lazy_module"]


class _LazyModule:
    def __init__(self, name: str) -> None:
        self.__name = name

    def __getattr__(self, attribute: str) -> Any:  # only called for what is not cached yet
        value = getattr(importlib.import_module(self.__name), attribute)
        setattr(self, attribute, value)
        return value

    def __repr__(self) -> str:
        return f"<module {self.__name!r}, imported on first use>"


def lazy_module(name: str) -> Any:
    """A stand-in for the module ``name`` that imports it at the first attribute read."""
    return _LazyModule(name)
