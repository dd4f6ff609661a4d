"""A typed handle on libaugeas, through python-augeas's cffi bindings.

Role: the one place that calls the untyped ``augeas`` module (STYLE.md section 3). python-augeas's
``Augeas`` class decodes every string as strict UTF-8, so a Latin-1 comment (or file name) in a
configuration makes it raise; Apache reads any bytes. This handle calls the same C functions
(``augeas.lib``/``augeas.ffi``) and maps bytes to ``str`` with ``surrogateescape``, like
``os.fsdecode``, so any byte survives a read-modify-write. It also runs augtool commands (``srun``):
``print`` writes a whole subtree, paths and values, in one call, which is how ``tree`` reads a file.

Allowed imports: the standard library, ``augeas``, and ``errors`` of this package.
"""

from __future__ import annotations

from typing import Any, BinaryIO

import augeas

from .errors import TreeError

__all__ = ["ENABLE_SPAN", "NO_LOAD", "NO_MODL_AUTOLOAD", "TYPE_CHECK", "AugeasHandle"]

# aug_init flags (augeas.h)
TYPE_CHECK = 1 << 2
NO_LOAD = 1 << 5
NO_MODL_AUTOLOAD = 1 << 6
ENABLE_SPAN = 1 << 7

_ffi: Any = augeas.ffi
_lib: Any = augeas.lib


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _dec(raw: Any) -> str | None:
    """A C string (``char *``) as ``str``; None for NULL."""
    if raw == _ffi.NULL:
        return None
    data: bytes = _ffi.string(raw)
    return data.decode("utf-8", "surrogateescape")


class AugeasHandle:
    """One ``augeas *``: every method is the C function of the same name, typed, raising :class:`TreeError`."""

    def __init__(self, loadpath: str, flags: int) -> None:
        handle = _lib.aug_init(_ffi.NULL, _enc(loadpath), flags)
        if handle == _ffi.NULL:
            raise TreeError("libaugeas could not be initialised (out of memory?)")
        self._aug: Any = handle

    def close(self) -> None:
        if self._aug is not None:
            _lib.aug_close(self._aug)
            self._aug = None

    def _live(self) -> Any:
        if self._aug is None:
            raise TreeError("the Augeas handle is closed")
        return self._aug

    def _fail(self, what: str) -> TreeError:
        aug = self._live()
        parts = [_dec(_lib.aug_error_message(aug)), _dec(_lib.aug_error_minor_message(aug)),
                 _dec(_lib.aug_error_details(aug))]
        return TreeError(f"Augeas {what} failed: " + ": ".join(part for part in parts if part))

    def get(self, path: str) -> str | None:
        value = _ffi.new("const char **")
        if _lib.aug_get(self._live(), _enc(path), value) < 0:
            raise self._fail(f"get {path!r}")
        return _dec(value[0])

    def set(self, path: str, value: str | None) -> None:
        raw = _ffi.NULL if value is None else _enc(value)
        if _lib.aug_set(self._live(), _enc(path), raw) < 0:
            raise self._fail(f"set {path!r}")

    def insert(self, path: str, label: str, *, before: bool) -> None:
        if _lib.aug_insert(self._live(), _enc(path), _enc(label), 1 if before else 0) < 0:
            raise self._fail(f"insert {label!r} next to {path!r}")

    def remove(self, path: str) -> int:
        removed: int = _lib.aug_rm(self._live(), _enc(path))
        if removed < 0:
            raise self._fail(f"remove {path!r}")
        return removed

    def match(self, path: str) -> list[str]:
        out = _ffi.new("char ***")
        count: int = _lib.aug_match(self._live(), _enc(path), out)
        if count < 0:
            raise self._fail(f"match {path!r}")
        array = out[0]
        try:
            return [_dec(array[i]) or "" for i in range(count)]
        finally:
            for i in range(count):
                _lib.free(array[i])
            _lib.free(array)

    def defvar(self, name: str, expr: str) -> int:
        """Bind ``$name`` to the nodes ``expr`` matches; their number."""
        count: int = _lib.aug_defvar(self._live(), _enc(name), _enc(expr))
        if count < 0:
            raise self._fail(f"defvar {expr!r}")
        return count

    def ns_label_value(self, name: str, index: int) -> tuple[str, str | None]:
        """Label and value of the ``index``-th node of ``$name`` (no path lookup: constant time)."""
        value = _ffi.new("const char **")
        label = _ffi.new("const char **")
        if _lib.aug_ns_attr(self._live(), _enc(name), index, value, label, _ffi.NULL) < 0:
            raise self._fail(f"ns_attr ${name}[{index}]")
        return _dec(label[0]) or "", _dec(value[0])

    def ns_path(self, name: str, index: int) -> str:
        out = _ffi.new("char **")
        if _lib.aug_ns_path(self._live(), _enc(name), index, out) < 0:
            raise self._fail(f"ns_path ${name}[{index}]")
        try:
            return _dec(out[0]) or ""
        finally:
            _lib.free(out[0])

    def span(self, path: str) -> tuple[int, int] | None:
        """Byte offsets (start, end) of the text the node was read from; None for a node made since."""
        filename = _ffi.new("char **")
        numbers = [_ffi.new("unsigned int *") for _ in range(6)]
        if _lib.aug_span(self._live(), _enc(path), filename, *numbers) < 0:
            return None
        _lib.free(filename[0])
        return int(numbers[4][0]), int(numbers[5][0])

    def srun(self, out: BinaryIO, command: str) -> None:
        """Run an augtool command (``print PATH``), its output going to ``out`` (an unbuffered file)."""
        if _lib.aug_srun(self._live(), out, _enc(command)) < 0:
            raise self._fail(repr(command))

    def load(self) -> None:
        if _lib.aug_load(self._live()) < 0:
            raise self._fail("load")

    def save(self) -> bool:
        """Write changed files; False when some file could not be written (see ``/augeas//error``)."""
        result: int = _lib.aug_save(self._live())
        return result >= 0
