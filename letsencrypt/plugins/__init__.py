"""Plugin discovery and the built-in authenticators (``standalone``, ``webroot``, ``manual``).

The client imports only :mod:`letsencrypt.plugins.discovery`; the built-in authenticators are
found through the ``letsencrypt.plugins`` entry points declared in ``pyproject.toml``, exactly
like a third-party plugin, and import only ``letsencrypt.plugin_api`` and ``letsencrypt.acme``
(plus this package's private ``_tls`` and ``_responders`` helpers).

Allowed imports: stdlib, ``letsencrypt.plugin_api``, ``letsencrypt.acme``, cryptography.
"""
