"""A third-party plugin package, installed into a fresh virtual environment, gets a certificate.

The example package (``examples/letsencrypt-dns-example``) is installed the way its users install
it, beside the client, into a new virtual environment; the client must find it through the
package's own ``letsencrypt.plugins`` entry point (nothing in the client names it), and obtain a
certificate from ca_stub with it, the CA's dns-01 lookups going to a DNS server that serves the
TXT records the plugin wrote to its zone file. Then the package's own test suite runs in that
environment with the client's pytest plugin, found through the ``pytest11`` entry point.

Offline and quick: the new environment sees the project's dependencies (and pip, setuptools,
pytest) through a ``.pth`` file naming this interpreter's site-packages, and both packages are
installed with ``--no-deps --no-index --no-build-isolation``. No index is ever asked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from letsencrypt.testing import CAStub, LetsencryptCli, json_zone_file, run_ca_stub, serve_dns

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "letsencrypt-dns-example"
INSTALL_TIMEOUT = 120.0


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                            stdin=subprocess.DEVNULL, check=False)
    assert result.returncode == 0, f"$ {' '.join(argv)}\nexit {result.returncode}\n{result.stdout}{result.stderr}"
    return result


def _offline_env() -> dict[str, str]:
    """No index, no user site, no bundle variables: everything must come from this machine."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PIP_", "LETSENCRYPT_", "PYTHON")) and key not in ("REQUESTS_CA_BUNDLE",)}
    env.update({"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1"})
    return env


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the client and the example plugin installed; its python."""
    root = tmp_path_factory.mktemp("third-party")
    target = root / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(target)
    python = target / "bin" / "python"
    site_packages = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              root).stdout.strip())
    # Dependencies (and pip, setuptools, pytest) from this environment, after the venv's own packages.
    (site_packages / "_letsencrypt_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = _offline_env()
    pip = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation"]
    _run([*pip, "-e", str(REPO)], root, env)
    # A copy, so that building the wheel leaves nothing behind in the checkout.
    source = shutil.copytree(EXAMPLE, root / "example-src", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    _run([*pip, str(source)], root, env)
    return python


@pytest.fixture(scope="module")
def dns_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CAStub, Path]]:
    """ca_stub asking a DNS server that serves the TXT records of one zone file; (ca, zone file)."""
    root = tmp_path_factory.mktemp("third-party-ca")
    zone = root / "zone.json"
    with serve_dns(sources=[json_zone_file(zone)]) as dns, \
            run_ca_stub(root, extra_args=["--dns-server", dns.address, "--bad-nonce-rate", "5"]) as ca:
        yield ca, zone


def test_the_fresh_environment_has_its_own_plugin_and_not_ours(plugin_venv: Path) -> None:
    """The example is installed only in the new environment: found there, through its entry point."""
    probe = ("import importlib.metadata as m; "
             "print(*sorted(f'{e.name}={e.value}' for e in m.entry_points(group='letsencrypt.plugins')))")
    assert "dns-example=letsencrypt_dns_example:DnsExampleAuthenticator" in _run(
        [str(plugin_venv), "-c", probe], plugin_venv.parent, _offline_env()).stdout
    ours = _run([sys.executable, "-c", probe], REPO).stdout
    assert "dns-example" not in ours, "the example must not be installed in the project's own environment"


def test_letsencrypt_plugins_lists_it(plugin_venv: Path) -> None:
    result = _run([str(plugin_venv), "-m", "letsencrypt", "plugins"], plugin_venv.parent, _offline_env())
    assert "dns-example" in result.stdout
    assert "standalone" in result.stdout


def test_obtains_a_certificate_through_its_entry_point(plugin_venv: Path, dns_ca: tuple[CAStub, Path],
                                                       tmp_path: Path) -> None:
    ca, zone = dns_ca
    cli = LetsencryptCli(ca, tmp_path / "client", python=str(plugin_venv), env=_offline_env())

    cli.run("certonly", "-a", "dns-example", "--dns-example-zone-file", str(zone),
            "-d", "plugin.example.com", "-d", "*.plugin.example.com")

    lineage = cli.live("plugin.example.com")
    assert lineage.exists()
    root = tmp_path / "root.pem"
    root.write_text(ca.roots_pem())
    chain = subprocess.run(["openssl", "verify", "-CAfile", str(root), "-untrusted", str(lineage.chain),
                            str(lineage.cert)], capture_output=True, text=True, check=False, timeout=30)
    assert chain.returncode == 0, chain.stdout + chain.stderr
    assert json.loads(zone.read_text()) == {}, "the plugin's cleanup must remove what it published"
    assert str(zone) in lineage.renewal_conf.read_text(), "the plugin option must be kept for renewal"


def test_the_plugin_s_own_tests_pass_with_the_client_s_pytest_plugin(plugin_venv: Path, tmp_path: Path) -> None:
    """The example's suite (unit tests and the fixtures' end-to-end test) runs in the new environment."""
    tests = shutil.copytree(EXAMPLE / "tests", tmp_path / "tests")
    result = subprocess.run(
        [str(plugin_venv), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tests)],
        cwd=tmp_path, env=_offline_env(), capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
        stdin=subprocess.DEVNULL, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
