"""nginx's choice of server block: listen parsing, name kinds and their order, address groups, defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.nginx.model import Listen, ServerBlock, best_for, match_rank, normal_host, pcre_to_python, serving


@pytest.mark.parametrize(
    ("args", "address", "port", "ssl", "default"),
    [
        (["80"], "*", 80, False, False),
        (["*:8080", "default_server"], "*", 8080, False, True),
        (["0.0.0.0:443", "ssl", "http2"], "*", 443, True, False),
        (["127.0.0.1:8443", "ssl"], "127.0.0.1", 8443, True, False),
        (["127.0.0.1"], "127.0.0.1", 80, False, False),
        (["[::]:80", "ipv6only=on", "default"], "[::]", 80, False, True),
        (["[0:0::1]:81"], "[::1]", 81, False, False),
        (["[::]"], "[::]", 80, False, False),
        (["localhost:8000"], "localhost", 8000, False, False),
        (["443", "SSL"], "*", 443, True, False),
    ],
)
def test_listen_parse(args: list[str], address: str, port: int, ssl: bool, default: bool) -> None:
    listen = Listen.parse(args)
    assert listen is not None
    assert (listen.address, listen.port, listen.ssl, listen.default_server) == (address, port, ssl, default)


@pytest.mark.parametrize("args", [["unix:/run/x.sock"], ["[::1"], ["host:port"], []])
def test_unreadable_listens_are_none(args: list[str]) -> None:
    assert Listen.parse(args) is None


def test_listen_text_for_another_port_keeps_the_address() -> None:
    assert Listen.parse(["80"]).with_port(443, ssl=True) == "443 ssl"  # type: ignore[union-attr]
    assert Listen.parse(["[::]:80"]).with_port(8443, ssl=True) == "[::]:8443 ssl"  # type: ignore[union-attr]
    assert Listen.parse(["127.0.0.1:80"]).with_port(8443, ssl=False) == "127.0.0.1:8443"  # type: ignore[union-attr]
    assert Listen.parse(["[::]:80"]).connect_host == "::1"  # type: ignore[union-attr]
    assert Listen.parse(["*:80"]).connect_host == "127.0.0.1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("example.com", "example.com", True),
        ("Example.COM", "example.com", True),
        ("example.com", "www.example.com", False),
        ("*.example.com", "www.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        (".example.com", "example.com", True),
        (".example.com", "www.example.com", True),
        (".example.com", "badexample.com", False),
        ("www.example.*", "www.example.org", True),
        ("www.example.*", "www.example.co.uk", True),
        ("www.example.*", "www.example", False),
        ("www.example.*", "mail.example.org", False),
        ("~^www\\d+\\.example\\.net$", "www12.example.net", True),
        ("~^www\\d+\\.example\\.net$", "WWW12.example.net".lower(), True),
        ("~example", "anexampleof.org", True),  # a search, not anchored unless the pattern says so
        ("~^(?<user>.+)\\.example\\.net$", "joe.example.net", True),
        ("~^(?'user'.+)\\.ex\\.net$", "joe.ex.net", True),
        ("~^(?<user>.+)\\.example\\.net$", "example.net", False),
        ("", "example.com", False),
        ("_", "example.com", False),
    ],
)
def test_match_rank(pattern: str, host: str, matches: bool) -> None:
    assert (match_rank(pattern, normal_host(host)) is not None) is matches


def test_a_regex_python_cannot_read_matches_nothing() -> None:
    assert pcre_to_python("a\\Qb") is None or pcre_to_python("a\\Qb") is not None  # never raises
    assert match_rank("~(?<bad", "x") is None


def _block(index: int, names: str, *listens: str, path: str = "sites.conf") -> ServerBlock:
    parsed = tuple(listen for text in listens if (listen := Listen.parse(text.split())) is not None)
    return ServerBlock(index, Path(path), index * 10 + 1, tuple(names.split()), parsed or (Listen("*", 80),))


def test_nginx_order_exact_then_longest_leading_then_longest_trailing_then_first_regex() -> None:
    blocks = [
        _block(0, "~^www\\..*$", "80"),
        _block(1, "~^www\\.example", "80"),
        _block(2, "www.*", "80"),
        _block(3, "www.example.*", "80"),
        _block(4, "*.com", "80"),
        _block(5, "*.example.com", "80"),
        _block(6, "www.example.com", "80"),
    ]
    order = [b.index for b in best_for(blocks, "www.example.com")]
    assert order == [6, 5, 4, 3, 2, 0, 1]
    for count, expected in ((6, 5), (5, 4), (4, 3), (3, 2), (2, 0), (1, 0)):
        assert [c.block.index for c in serving(blocks[:count], "www.example.com", 80)] == [expected]


def test_exact_name_wins_even_after_a_wildcard_in_config_order_and_first_of_duplicates_wins() -> None:
    blocks = [_block(0, "*.example.com", "80"), _block(1, "a.example.com", "80"), _block(2, "a.example.com", "80")]
    [choice] = serving(blocks, "A.Example.com.", 80)
    assert choice.block.index == 1 and choice.by_name


def test_groups_by_address_and_port_and_falls_back_to_default_server() -> None:
    blocks = [
        _block(0, "first.example", "127.0.0.1:80"),
        _block(1, "other.example", "127.0.0.1:80", "[::]:80 default_server"),
        _block(2, "wild.example", "80"),
        _block(3, "default.example", "*:80 default_server", "8080"),
        _block(4, "tls.example", "443 ssl"),
    ]
    choices = {c.socket: c for c in serving(blocks, "nomatch.example", 80)}
    assert set(choices) == {("127.0.0.1", 80), ("[::]", 80), ("*", 80)}
    assert choices[("127.0.0.1", 80)].block.index == 0 and not choices[("127.0.0.1", 80)].by_name
    assert choices[("[::]", 80)].block.index == 1
    assert choices[("*", 80)].block.index == 3
    # a block on *:80 does not answer connections to 127.0.0.1:80, which has blocks of its own
    wild = {c.socket: c for c in serving(blocks, "wild.example", 80)}
    assert wild[("*", 80)].block.index == 2 and wild[("*", 80)].by_name
    assert not wild[("127.0.0.1", 80)].by_name
    assert [c.block.index for c in serving(blocks, "tls.example", 443)] == [4]
    assert serving(blocks, "tls.example", 9999) == []


def test_blocks_know_their_tls_listens_and_literal_names() -> None:
    block = ServerBlock(0, Path("x"), 1, ("a.example", ".b.example", "*.c.example", "~x", "_", ""),
                        (Listen.parse(["80"]), Listen.parse(["443", "ssl"])))  # type: ignore[arg-type]
    assert block.ports(ssl=True) == {443} and block.ports(ssl=False) == {80}
    assert block.literal_names() == {"a.example", "b.example"}
    legacy = ServerBlock(1, Path("x"), 1, (), (Listen.parse(["443"]),), ssl_on=True)  # type: ignore[arg-type]
    assert legacy.ports(ssl=True) == {443}
