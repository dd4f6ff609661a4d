"""Virtual hosts and the vhost Apache picks: addresses, names (exact, wildcard, case), IP-based
before ``*``, the first vhost of a set as its default, TLS, spans; and the package's public names."""

from __future__ import annotations

from pathlib import Path

import pytest

import plugins.apache
from plugins.apache import Address, ApacheConfig, LoadOptions, ServerBuild, normalize_name

BUILD = ServerBuild.of((2, 4, 62))


def config(tmp_path: Path, text: str, **files: str) -> ApacheConfig:
    (tmp_path / "apache2.conf").write_text(text)
    for name, body in files.items():
        path = tmp_path / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    return ApacheConfig.read(LoadOptions(tmp_path, build=BUILD))


def vhost(addresses: str, name: str | None = None, *aliases: str, extra: str = "") -> str:
    lines = [f"<VirtualHost {addresses}>"]
    if name:
        lines.append(f"    ServerName {name}")
    if aliases:
        lines.append(f"    ServerAlias {' '.join(aliases)}")
    if extra:
        lines.append(extra)
    return "\n".join([*lines, "</VirtualHost>", ""])


@pytest.mark.parametrize(("text", "address"), [
    ("*:80", Address("*", 80)), ("_default_:443", Address("*", 443)), ("*", Address("*", None)),
    ("*:*", Address("*", None)), ("192.0.2.1", Address("192.0.2.1", None)),
    ("192.0.2.1:8080", Address("192.0.2.1", 8080)),
    ("[2001:DB8::1]:443", Address("2001:db8::1", 443)), ("[::]:80", Address("*", 80)), ("0.0.0.0:80", Address("*", 80)),
    ("Host.Example:80", Address("host.example", 80)),
])
def test_addresses(text: str, address: Address) -> None:
    assert Address.parse(text) == address


def test_names_are_normalised() -> None:
    assert normalize_name("WWW.Example.COM.") == "www.example.com"
    assert normalize_name("https://a.example:8443/x") == "a.example"
    assert normalize_name("[::1]:80") == "[::1]"


def test_name_based_choice_first_match_else_first_vhost(tmp_path: Path) -> None:
    found = config(tmp_path, vhost("*:80", "default.example") + vhost("*:80", "a.example", "www.a.example")
                   + vhost("*:80", "b.example", "*.b.example", "www.c.*", "??.d.example")
                   + vhost("*:80", "a.example") + vhost("*:443", "a.example", extra="    SSLEngine on"))
    first, a, b, a_again, tls = found.vhosts
    assert found.vhost_for("A.Example", 80) is a  # case-insensitive, the first of two
    assert found.vhost_for("www.a.example.", 80) is a
    assert found.vhost_for("x.y.b.example", 80) is b  # '*' matches dots too, as in Apache
    assert found.vhost_for("www.c.org", 80) is b
    assert found.vhost_for("xy.d.example", 80) is b and found.vhost_for("xyz.d.example", 80) is first
    assert found.vhost_for("b.example.org", 80) is first  # no match: the first vhost of the set
    assert found.vhost_for("a.example", 443) is tls and tls.tls and not a.tls
    assert found.vhost_for("a.example", 8080) is None  # nobody listens there: the main server
    assert found.vhosts_named("a.example") == [a, a_again, tls]
    assert found.vhosts_named("a.example", 443) == [tls]
    assert a.matches("WWW.A.EXAMPLE") and not a.matches("b.example") and a_again.names == ("a.example",)


def test_ip_based_vhosts_come_before_wildcards(tmp_path: Path) -> None:
    found = config(tmp_path, vhost("*:80", "star.example", "ip.example") + vhost("127.0.0.2:80", "ip.example")
                   + vhost("127.0.0.2:80", "other.example") + vhost("[::1]:80", "six.example"))
    star, ip, other, six = found.vhosts
    assert found.vhost_for("ip.example", 80, "127.0.0.2") is ip
    assert found.vhost_for("star.example", 80, "127.0.0.2") is ip  # only that IP's set is considered
    assert found.vhost_for("other.example", 80, "127.0.0.2") is other
    assert found.vhost_for("ip.example", 80, "127.0.0.1") is star  # another address: the '*' set
    assert found.vhost_for("six.example", 80, "::1") is six
    assert found.vhost_for("ip.example", 80) is star  # without an address: as on one with no IP-based vhost


def test_ip_based_only(tmp_path: Path) -> None:
    found = config(tmp_path, vhost("192.0.2.1:80", "a.example") + vhost("192.0.2.2:80", "b.example"))
    a, b = found.vhosts
    assert found.vhost_for("b.example", 80) is b
    assert found.vhost_for("c.example", 80) is a
    assert found.vhost_for("b.example", 80, "192.0.2.1") is a


def test_a_port_less_address_serves_every_port_and_servername_ports(tmp_path: Path) -> None:
    found = config(tmp_path, vhost("*", "any.example") + vhost("*:8080", "eight.example"))
    anyport, eight = found.vhosts
    assert found.vhost_for("any.example", 443) is anyport
    assert found.vhost_for("any.example", 8080) is eight  # an address with that exact port comes first
    found = config(tmp_path, "ServerName main.example:8000\n" + vhost("*", "x.example"))
    assert found.vhosts[0].addresses == (Address("*", 8000),)  # the main server's port fills it in


def test_a_vhost_without_servername_takes_the_main_servers(tmp_path: Path) -> None:
    found = config(tmp_path, "ServerName Main.Example\n" + vhost("*:80") + vhost("*:80", "b.example"))
    unnamed, _ = found.vhosts
    assert unnamed.server_name == "main.example" and not unnamed.has_own_name
    assert found.vhost_for("main.example", 80) is unnamed
    assert found.main_server_name == "main.example"


def test_vhosts_in_the_main_file_in_subdirectories_and_conditions(tmp_path: Path) -> None:
    (tmp_path / "sites" / "one").mkdir(parents=True)
    (tmp_path / "sites" / "one" / "two.conf").write_text(vhost("*:80", "one.example") + vhost("*:80", "two.example"))
    found = config(
        tmp_path,
        "ServerName main.example\nListen 80\nListen 127.0.0.1:8443\n" + vhost("*:80", "main.example")
        + "Include sites/*/*.conf\n<IfModule ssl_module>\n" + vhost("*:443", "ssl.example") + "</IfModule>\n"
        + "<IfDefine !NOPE>\n" + vhost("*:80", "defined.example") + "</IfDefine>\n",
    )
    assert [v.server_name for v in found] == ["main.example", "one.example", "two.example", "defined.example"]
    main, _, two, defined = found.vhosts
    assert (main.file, main.line, main.end_line) == (str(tmp_path / "apache2.conf"), 4, 6)
    assert (two.file, two.line, two.end_line) == (str(tmp_path / "sites" / "one" / "two.conf"), 4, 6)
    assert found.listens == [Address("*", 80), Address("127.0.0.1", 8443)]
    assert defined.path.endswith("/IfDefine/VirtualHost")
    assert found.tree.file(two.file).nodes[two.path] is two.section


def test_tls_from_sslengine_in_the_vhost_or_in_an_include(tmp_path: Path) -> None:
    found = config(tmp_path, "SSLEngine on\n" + vhost("*:443", "inherits.example")
                   + vhost("*:443", "off.example", extra="    SSLEngine off")
                   + vhost("*:443", "included.example", extra="    Include options.conf"),
                   **{"options.conf": "SSLEngine off\nSSLEngine On\n"})
    assert [v.tls for v in found] == [True, False, True]


def test_directives_of_a_vhost(tmp_path: Path) -> None:
    found = config(tmp_path, vhost("*:80", "a.example", extra="    Define D /srv\n    DocumentRoot ${D}/a\n"
                                   "    <Directory ${D}/a>\n        Require all granted\n    </Directory>"))
    (vhost_,) = found.vhosts
    assert [entry.words for entry in vhost_.directives("documentroot")] == [("/srv/a",)]
    assert vhost_.directives("Require") == []  # not directly in the vhost
    assert repr(vhost_).startswith("<VirtualHost *:80 a.example at ")


def test_linear_lookup_structures(tmp_path: Path) -> None:
    sites = tmp_path / "sites"
    sites.mkdir()
    for index in range(300):
        (sites / f"{index:03d}.conf").write_text(vhost("*:80", f"s{index}.example", f"www.s{index}.example"))
    found = config(tmp_path, "Include sites\n")
    assert len(found) == 300
    assert found.vhost_for("www.s299.example", 80) is found.vhosts[299]
    assert found.loaded.files[-1] == str(sites / "299.conf")


def test_public_names_are_pinned() -> None:
    assert sorted(plugins.apache.__all__) == sorted([
        "LENS_DIR", "Address", "ApacheConfig", "ApacheConfigError", "ConfigTree", "Directive", "Entry", "FileTree",
        "IncludeError", "Included", "LoadOptions", "LoadedConfig", "Node", "Section", "ServerBuild",
        "StaleNodeError", "TreeError", "UnreadableFileError", "VirtualHost", "load_config", "normalize_name",
        "parse_version", "server_build", "split_words",
    ])
    for name in plugins.apache.__all__:
        assert getattr(plugins.apache, name) is not None
