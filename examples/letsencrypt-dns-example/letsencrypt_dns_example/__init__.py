"""An example third-party dns-01 authenticator for the letsencrypt client.

It publishes ``_acme-challenge`` TXT records in a JSON "zone file" standing in for a DNS provider's
API: ``{"_acme-challenge.example.com": ["<value>", ...]}``. A real provider plugin has the same
shape: replace :class:`ZoneFileClient` with the provider's API client and keep the authenticator.

Imports: the standard library and ``letsencrypt.plugin_api`` only (the public plugin contract).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from letsencrypt import plugin_api
from letsencrypt.plugin_api import ChallengeSetupError, ChallengeTask, Identifier, Option, PluginContext

__all__ = ["DnsExampleAuthenticator", "ZoneFileClient"]

logger = logging.getLogger(__name__)


class ZoneFileClient:
    """The "provider API": adds and deletes TXT values in a JSON zone file, each change atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> dict[str, list[str]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise plugin_api.MisconfigurationError(
                f"cannot read the zone file {self.path}: {err}", hint="fix or remove the file"
            ) from err
        if not isinstance(data, dict):
            raise plugin_api.MisconfigurationError(f"the zone file {self.path} is not a JSON object")
        return {str(name): [str(value) for value in values] for name, values in data.items()}

    def add_txt(self, name: str, value: str) -> None:
        records = self.records()
        values = records.setdefault(name, [])
        if value not in values:
            values.append(value)
        self._write(records)

    def delete_txt(self, name: str, value: str) -> None:
        records = self.records()
        values = [v for v in records.get(name, []) if v != value]
        if values:
            records[name] = values
        else:
            records.pop(name, None)
        self._write(records)

    def _write(self, records: Mapping[str, list[str]]) -> None:
        """Write to a temporary file beside the zone file, then rename: readers never see half a file."""
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(records, out, indent=2, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            Path(temporary).chmod(0o644)
            Path(temporary).replace(self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


class DnsExampleAuthenticator:
    """Answers dns-01 by publishing TXT records through :class:`ZoneFileClient`."""

    name = "dns-example"
    description = "Example dns-01 authenticator: TXT records in a JSON zone file"
    options: Sequence[Option] = (
        Option("zone-file", "JSON file holding the TXT records", type="path", required=True),
        Option("propagation-seconds", "seconds to wait for the records to reach every name server", type="int",
               default=0),
    )  # fmt: skip

    def __init__(self, context: PluginContext) -> None:
        self._context = context
        zone_file = context.options.get("zone-file")
        self._client = ZoneFileClient(Path(zone_file)) if zone_file else None
        self._wait = int(context.options.get("propagation-seconds") or 0)

    def prepare(self) -> None:
        client = self._require_client()
        if not client.path.parent.is_dir():
            raise plugin_api.MisconfigurationError(
                f"the directory of the zone file {client.path} does not exist", hint="create it first"
            )
        client.records()  # fails early on an unreadable zone

    def supported_challenges(self, identifier: Identifier) -> Sequence[str]:
        return ["dns-01"] if identifier.type == "dns" else []  # wildcards included; IP addresses have no zone

    def perform(self, tasks: Sequence[ChallengeTask]) -> Sequence[Mapping[str, Any]]:
        client = self._require_client()
        for task in tasks:
            if task.type != "dns-01":
                raise plugin_api.NotSupported(f"dns-example answers only dns-01, not {task.challenge.type_name}")
            client.add_txt(task.dns01_record_name, task.dns01_txt_value)
            logger.info("dns-example: published TXT %s for %s", task.dns01_record_name, task.domain)
        if self._wait:
            self._context.reporter.progress(f"Waiting {self._wait} s for DNS propagation")
            time.sleep(self._wait)
        return [{} for _ in tasks]

    def cleanup(self, tasks: Sequence[ChallengeTask]) -> None:
        client = self._require_client()
        for task in tasks:
            if task.type == "dns-01":
                client.delete_txt(task.dns01_record_name, task.dns01_txt_value)

    def _require_client(self) -> ZoneFileClient:
        if self._client is None:
            raise ChallengeSetupError("dns-example needs a zone file", hint="give --dns-example-zone-file PATH")
        return self._client


if TYPE_CHECKING:  # the static conformance check: mypy reports a contract mismatch here
    _: type[plugin_api.Authenticator] = DnsExampleAuthenticator
