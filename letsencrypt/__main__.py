"""``python -m letsencrypt`` is the ``letsencrypt`` command."""

from letsencrypt.cli import main

if __name__ == "__main__":
    main()
