"""The nginx plugin: installs certificates into nginx and answers challenges through it.

Found only through the ``letsencrypt.plugins`` entry point. Three layers (STYLE.md section 10):
grammar/tree (this package's ``grammar``, ``tree``, ``parser``, ``loader``, ``crosscheck``:
text <-> typed nodes with an exact round trip), then the model (``configuration``: the tree read as
server blocks; ``model``: addresses and nginx's choice of block for a name) and the actions
(``installer``, ``authenticator``, ``plugin``: the entry point's class), with ``transactions``
(byte-for-byte checkpoints), ``control`` (nginx -t, reload verified by watching the workers),
``probes`` (what the server really serves) and ``ssl_files`` (the shared TLS options, DH group).

The parser layer in brief::

    config = load("/etc/nginx/nginx.conf")            # main file + includes, as nginx resolves them
    for found in config.find("server_name"):          # across includes, with enclosing blocks
        found.statement.args, found.parents, found.file.path
    block.insert_after(anchor, Directive.new("listen", "443", "ssl"))
    block.remove(statement); statement.set_arg(0, "8443")
    config.modified_files()[0].encode()               # the bytes to write; other lines unchanged
    cross_check(config)                               # nginx -T read the same files

Allowed imports: the standard library, pyparsing, ``letsencrypt.plugin_api``, ``letsencrypt.acme``
and this package.
"""

from __future__ import annotations

from .crosscheck import cross_check, nginx_dump
from .errors import NginxCrossCheckError, NginxIncludeCycleError, NginxParseError
from .grammar import quote, unquote
from .loader import Config, Located, load
from .parser import parse, parse_file
from .tree import Block, ConfigFile, Container, Directive, RawBlock, Statement

__all__ = [
    "Block",
    "Config",
    "ConfigFile",
    "Container",
    "Directive",
    "Located",
    "NginxCrossCheckError",
    "NginxIncludeCycleError",
    "NginxParseError",
    "RawBlock",
    "Statement",
    "cross_check",
    "load",
    "nginx_dump",
    "parse",
    "parse_file",
    "quote",
    "unquote",
]
