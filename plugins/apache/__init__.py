"""The Apache plugin: reads the configuration as Apache does and edits it through Augeas.

Role: an installer and authenticator for Apache 2.4 on Debian's layout, found only through the
``letsencrypt.plugins`` entry point. Layers (STYLE.md section 10):

- ``tree``: Augeas with our corrected Httpd lens (``lenses/httpd.aug``): typed nodes per file
  (``nodes``), read in bulk, and an edit API that keeps comments and layout. ``_augeas`` is the
  typed handle on libaugeas (any byte survives); ``words`` is Apache's tokenizer.
- ``loader`` (with ``conditions``): what Apache reads from the server root: includes, ``Define``
  and ``${VAR}``, ``<IfModule>``/``<IfDefine>``/``<IfVersion>``/``<IfFile>``, ``LoadModule``.
- ``model``: the virtual hosts, their addresses and names, and the vhost Apache picks for a name.
- ``errors``: what the reading layer raises (all are ``letsencrypt.plugin_api`` errors).
- ``control``, ``transactions``, ``snippets``: running the server, checkpoints (on
  ``letsencrypt.plugin_api.checkpoints``), generated text.
- actions: ``installer`` (with ``tls_vhost`` and ``layout``), ``authenticator``, ``server`` (the
  configuration shared by both in one run) and ``plugin`` (the entry point's class).

Allowed imports: the standard library, ``augeas`` (python-augeas), ``letsencrypt.plugin_api``,
``letsencrypt.acme`` and this package.
"""

from __future__ import annotations

from .conditions import ServerBuild, parse_version, server_build
from .errors import ApacheConfigError, IncludeError, StaleNodeError, TreeError, UnreadableFileError
from .loader import Entry, Included, LoadedConfig, LoadOptions, load_config
from .model import Address, ApacheConfig, VirtualHost, normalize_name
from .tree import LENS_DIR, ConfigTree, Directive, FileTree, Node, Section
from .words import split_words

__all__ = [
    "LENS_DIR",
    "Address",
    "ApacheConfig",
    "ApacheConfigError",
    "ConfigTree",
    "Directive",
    "Entry",
    "FileTree",
    "IncludeError",
    "Included",
    "LoadOptions",
    "LoadedConfig",
    "Node",
    "Section",
    "ServerBuild",
    "StaleNodeError",
    "TreeError",
    "UnreadableFileError",
    "VirtualHost",
    "load_config",
    "normalize_name",
    "parse_version",
    "server_build",
    "split_words",
]
