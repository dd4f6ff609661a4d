"""Layering: who may import whom (DESIGN.md section 1, STYLE.md section 1), checked with ``ast``.

Every ``.py`` file under ``letsencrypt/``, ``ca_stub/`` and ``plugins/`` is parsed; its imports
(``import``, ``from ... import`` with relative ones resolved, ``importlib.import_module("literal")``,
also under ``if TYPE_CHECKING:``) are checked against the rules below. ``from a import b`` counts
as importing ``a.b``, so ``from ca_stub import sa`` names the ``sa`` component.

- ``letsencrypt/acme``: stdlib, josepy, requests, cryptography, urllib3, ``letsencrypt.acme``.
- ``letsencrypt`` (rest): stdlib, third-party, ``letsencrypt``; never ``plugins``, ``ca_stub``.
- ``plugins/<name>``: stdlib, its parser library (nginx: pyparsing, apache: augeas),
  ``letsencrypt.plugin_api``, ``letsencrypt.acme``, its own package.
- ``ca_stub``: stdlib, third-party, ``letsencrypt.acme``, ``ca_stub``; never the client or plugins.
  A component package (``ca_stub/{wfe,ra,sa,pa,va,ca}``) imports only ``ca_stub.contracts`` and
  itself from ``ca_stub``; outside the components only ``ca_stub/server.py`` and ``ca_stub/cli.py``
  (the wiring) may name a component.
- Anywhere: only ``ca_stub/sa`` imports ``sqlite3``.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKED_ROOTS = ("letsencrypt", "ca_stub", "plugins")
FIRST_PARTY = frozenset({*CHECKED_ROOTS, "tests"})
ACME_THIRD_PARTY = frozenset({"josepy", "requests", "cryptography", "urllib3"})
PLUGIN_PARSERS = {"nginx": frozenset({"pyparsing"}), "apache": frozenset({"augeas"})}
CA_COMPONENTS = frozenset({"wfe", "ra", "sa", "pa", "va", "ca", "ceremony"})
CA_WIRING = frozenset({"ca_stub.server", "ca_stub.cli"})
STDLIB = frozenset(sys.stdlib_module_names)


@dataclasses.dataclass(frozen=True)
class Import:
    path: Path
    line: int
    target: str


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def module_name(root: Path, path: Path) -> tuple[str, bool]:
    """Dotted module name of ``path`` under ``root``, and whether it is a package ``__init__``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str | None:
    package = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 > len(package) - 1:
        return None
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, name] if name else base)


def iter_imports(root: Path, path: Path) -> Iterator[Import | str]:
    """Yield the file's imports, or an error string for what cannot be parsed or resolved."""
    rel = path.relative_to(root)
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as err:
        yield f"{rel}:{err.lineno} does not parse ({err.msg})"
        return
    module, is_package = module_name(root, path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(rel, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(module, is_package, node.level, node.module)
                if base is None:
                    yield f"{rel}:{node.lineno} has a relative import beyond the top-level package"
                    continue
            else:
                base = node.module or ""
            for alias in node.names:
                yield Import(rel, node.lineno, base if alias.name == "*" else f"{base}.{alias.name}")
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__"))
            )
        ):
            target = node.args[0].value
            if not target.startswith("."):
                yield Import(rel, node.lineno, target)


def rule_violated(module: str, target: str) -> str | None:
    """The rule that importing ``target`` from ``module`` breaks, or None if it is allowed."""
    top = target.split(".")[0]
    stdlib, third_party = top in STDLIB, top not in STDLIB and top not in FIRST_PARTY

    if top == "sqlite3" and not _within(module, "ca_stub.sa"):
        return "only ca_stub/sa touches SQLite"

    if _within(module, "letsencrypt.acme"):
        if stdlib or top in ACME_THIRD_PARTY or _within(target, "letsencrypt.acme"):
            return None
        return "letsencrypt/acme imports only stdlib, josepy, requests, cryptography and letsencrypt.acme"

    if _within(module, "letsencrypt"):
        if stdlib or third_party or _within(target, "letsencrypt"):
            return None
        return "letsencrypt never imports plugins, ca_stub or tests by name"

    if _within(module, "plugins"):
        parts = module.split(".")
        own = ".".join(parts[:2]) if len(parts) > 1 else None
        parsers = PLUGIN_PARSERS.get(parts[1], frozenset()) if own else frozenset()
        if (
            stdlib
            or top in parsers
            or _within(target, "letsencrypt.plugin_api")
            or _within(target, "letsencrypt.acme")
            or (own is not None and _within(target, own))
        ):
            return None
        allowed_parsers = "".join(f", {p}" for p in sorted(parsers))
        return (
            f"a plugin imports only stdlib{allowed_parsers}, letsencrypt.plugin_api, letsencrypt.acme, itself"
        )

    if _within(module, "ca_stub"):
        if not (stdlib or third_party or _within(target, "letsencrypt.acme") or _within(target, "ca_stub")):
            return "ca_stub imports only letsencrypt.acme of the client, never plugins"
        if not _within(target, "ca_stub"):
            return None
        parts = module.split(".")
        own_component = parts[1] if len(parts) > 1 and parts[1] in CA_COMPONENTS else None
        if own_component is not None:
            if _within(target, f"ca_stub.{own_component}") or _within(target, "ca_stub.contracts"):
                return None
            return f"a ca_stub component imports only ca_stub.contracts and ca_stub.{own_component}"
        target_parts = target.split(".")
        names_component = len(target_parts) > 1 and target_parts[1] in CA_COMPONENTS
        if names_component and module not in CA_WIRING:
            return "only ca_stub/server.py and ca_stub/cli.py name concrete components"
        return None

    return None


def check_tree(root: Path) -> tuple[list[str], int]:
    """Check every .py file under ``root``'s checked folders; return (violations, files checked)."""
    violations: list[str] = []
    count = 0
    for top in CHECKED_ROOTS:
        for path in sorted((root / top).rglob("*.py")):
            count += 1
            module, _ = module_name(root, path)
            for found in iter_imports(root, path):
                if isinstance(found, str):
                    violations.append(found)
                    continue
                rule = rule_violated(module, found.target)
                if rule is not None:
                    violations.append(f"{found.path}:{found.line} imports {found.target} ({rule})")
    return violations, count


def test_project_layering() -> None:
    violations, count = check_tree(REPO)
    assert count > 0, f"no .py files found under {CHECKED_ROOTS} in {REPO}"
    assert list((REPO / "letsencrypt" / "acme").glob("*.py")), "letsencrypt/acme has no modules"
    assert not violations, "layering violations:\n" + "\n".join(violations)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


CLEAN_TREE = {
    "letsencrypt/__init__.py": "",
    "letsencrypt/plugin_api.py": "from letsencrypt.acme import messages\n",
    "letsencrypt/storage.py": "import click\nimport os\nfrom . import plugin_api\n",
    "letsencrypt/acme/__init__.py": "from . import messages\n",
    "letsencrypt/acme/messages.py": (
        "from __future__ import annotations\nimport json\nimport josepy\nimport requests\n"
        "from urllib3.exceptions import HTTPError\nfrom cryptography import x509\nfrom .errors import E\n"
    ),
    "letsencrypt/acme/errors.py": "class E(Exception): ...\n",
    "plugins/__init__.py": "",
    "plugins/nginx/__init__.py": "from .parser import load\n",
    "plugins/nginx/parser.py": (
        "import pyparsing\nfrom letsencrypt import plugin_api\nfrom letsencrypt.acme import jws\n"
    ),
    "plugins/apache/__init__.py": "import augeas\nfrom plugins.apache import tree\n",
    "ca_stub/__init__.py": "",
    "ca_stub/contracts.py": "import typing\nfrom letsencrypt.acme import messages\n",
    "ca_stub/server.py": "from ca_stub.wfe import app\nfrom .sa import store\nfrom . import ra\n",
    "ca_stub/cli.py": "import click\nfrom ca_stub import server, va\n",
    "ca_stub/wfe/__init__.py": "from .app import App\n",
    "ca_stub/wfe/app.py": "from ..contracts import Store\nfrom ca_stub.wfe import nonces\nimport requests\n",
    "ca_stub/sa/store.py": "import sqlite3\nfrom ca_stub import contracts\n",
}

BAD_TREE = {
    "letsencrypt/acme/client.py": "import click\nfrom letsencrypt import storage\n",
    "letsencrypt/cli.py": "from plugins.nginx import configurator\nimport ca_stub\n",
    "letsencrypt/cache.py": "import sqlite3\n",
    "plugins/nginx/cfg.py": "from letsencrypt import storage\nimport augeas\nfrom plugins.apache import x\n",
    "plugins/apache/cfg.py": "import pyparsing\nfrom ca_stub import contracts\n",
    "ca_stub/wfe/handlers.py": "from ..sa import store\nfrom ca_stub import ra\nimport sqlite3\n",
    "ca_stub/ra/__init__.py": "from letsencrypt.storage import Lineage\nfrom ca_stub.errors import E\n",
    "ca_stub/contracts.py": "from ca_stub.va import validate\n",
    "ca_stub/ceremony.py": "import importlib\nimportlib.import_module('ca_stub.ca')\n",
    "ca_stub/va/deep.py": "from .... import x\n",
    "ca_stub/pa/broken.py": "def f(:\n",
}

EXPECTED_BAD = [
    "letsencrypt/acme/client.py:1 imports click (letsencrypt/acme imports only",
    "letsencrypt/acme/client.py:2 imports letsencrypt.storage (letsencrypt/acme imports only",
    "letsencrypt/cli.py:1 imports plugins.nginx.configurator (letsencrypt never imports plugins",
    "letsencrypt/cli.py:2 imports ca_stub (letsencrypt never imports",
    "letsencrypt/cache.py:1 imports sqlite3 (only ca_stub/sa touches SQLite)",
    "plugins/nginx/cfg.py:1 imports letsencrypt.storage (a plugin imports only stdlib, pyparsing,",
    "plugins/nginx/cfg.py:2 imports augeas (a plugin",
    "plugins/nginx/cfg.py:3 imports plugins.apache.x (a plugin",
    "plugins/apache/cfg.py:1 imports pyparsing (a plugin imports only stdlib, augeas,",
    "plugins/apache/cfg.py:2 imports ca_stub.contracts (a plugin",
    "ca_stub/wfe/handlers.py:1 imports ca_stub.sa.store (a ca_stub component imports only",
    "ca_stub/wfe/handlers.py:2 imports ca_stub.ra (a ca_stub component",
    "ca_stub/wfe/handlers.py:3 imports sqlite3 (only ca_stub/sa",
    "ca_stub/ra/__init__.py:1 imports letsencrypt.storage.Lineage (ca_stub imports only letsencrypt.acme",
    "ca_stub/ra/__init__.py:2 imports ca_stub.errors.E (a ca_stub component",
    "ca_stub/contracts.py:1 imports ca_stub.va.validate (only ca_stub/server.py and ca_stub/cli.py",
    "ca_stub/ceremony.py:2 imports ca_stub.ca (a ca_stub component imports only ca_stub.contracts",
    "ca_stub/va/deep.py:1 has a relative import beyond the top-level package",
    "ca_stub/pa/broken.py:1 does not parse",
]


def test_checker_accepts_allowed_imports(tmp_path: Path) -> None:
    _write(tmp_path, CLEAN_TREE)
    violations, count = check_tree(tmp_path)
    assert count == len(CLEAN_TREE)
    assert violations == []


def test_checker_reports_each_violation(tmp_path: Path) -> None:
    _write(tmp_path, {**CLEAN_TREE, **BAD_TREE})
    violations, _ = check_tree(tmp_path)
    missing = [e for e in EXPECTED_BAD if not any(v.startswith(e) for v in violations)]
    unexpected = [v for v in violations if not any(v.startswith(e) for e in EXPECTED_BAD)]
    assert not missing, "not reported:\n" + "\n".join(missing) + "\nreported:\n" + "\n".join(violations)
    assert not unexpected, "reported but not expected:\n" + "\n".join(unexpected)


@pytest.mark.parametrize(
    ("module", "is_package", "level", "name", "expected"),
    [
        ("ca_stub.wfe.app", False, 1, "nonces", "ca_stub.wfe.nonces"),
        ("ca_stub.wfe.app", False, 2, "contracts", "ca_stub.contracts"),
        ("ca_stub.wfe", True, 1, None, "ca_stub.wfe"),
        ("ca_stub.wfe", True, 2, "sa", "ca_stub.sa"),
        ("ca_stub.wfe.app", False, 3, None, None),
    ],
)
def test_relative_import_resolution(
    module: str, is_package: bool, level: int, name: str | None, expected: str | None
) -> None:
    assert _resolve_relative(module, is_package, level, name) == expected
