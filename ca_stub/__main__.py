"""``python -m ca_stub`` is ``ca-stub``."""

from ca_stub.cli import main

main()
