"""Round trips over a corpus of real configurations from Debian's archive (see nginx_corpus.py).

Every file must parse, dump back byte for byte, split into the words nginx's own tokenizer gives,
and survive an insert-then-remove in each of its blocks unchanged. Skipped with a reason when the
archive is unreachable, except under CI, which reaches it.
"""

from __future__ import annotations

import pytest

from integration.debian_corpus import corpus_or_skip
from integration.nginx_corpus import ESSENTIAL, PACKAGES, Corpus, assemble
from plugins.nginx import Block, Directive, RawBlock, _reference, parse, parse_file
from plugins.nginx.tree import Container


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return corpus_or_skip(assemble, "nginx")


def _events(container: Container) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for child in container.children:
        words = [child.name, *child.args]
        if isinstance(child, Block):
            out += [("{", words), *_events(child), ("}", [])]
        else:
            out.append(("lua" if isinstance(child, RawBlock) else ";", words))
    return out


def test_corpus_covers_the_packages(corpus: Corpus) -> None:
    packages = {corpus.package_of(path) for path in corpus.files}
    assert ESSENTIAL in packages
    assert len(packages) >= len(PACKAGES) - 3, f"packages missing from the archive: {corpus.missing}"
    assert len(corpus.files) >= 30, [str(path) for path in corpus.files]


def test_every_corpus_file_round_trips(corpus: Corpus) -> None:
    failures = []
    statements = 0
    for path in corpus.files:
        tree = parse_file(path)
        statements += sum(1 for _ in tree.walk())
        if tree.encode() != path.read_bytes():
            failures.append(str(path))
    assert not failures
    assert statements > 500


def test_corpus_words_are_the_words_nginx_reads(corpus: Corpus) -> None:
    for path in corpus.files:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
        expected = [(kind, words) for kind, words, _ in _reference.events(text)]
        assert _events(parse(text)) == expected, path


def test_insert_then_remove_in_every_block_changes_nothing(corpus: Corpus) -> None:
    blocks = 0
    for path in corpus.files:
        tree = parse_file(path)
        containers: list[Container] = [tree, *(s for s, _ in tree.walk() if isinstance(s, Block))]
        for container in containers:
            for index in (0, len(container.children)):
                added = Directive.new("x_probe", "1")
                container.insert(index, added)
                assert "x_probe 1;" in tree.dump()
                container.remove(added)
                assert tree.dump() == tree.source, (path, index)
            blocks += 1
    assert blocks > 100
