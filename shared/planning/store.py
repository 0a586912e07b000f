"""Where density scans are kept between runs: a blob container in Azure, a folder locally."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Protocol

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient
from pydantic import ValidationError

from shared.config import Settings
from shared.planning.scan import Scan

log = logging.getLogger(__name__)


class ScanStore(Protocol):
    def save(self, scan: Scan) -> str:
        """Keep `scan` as the feed's latest; return where it went."""
        ...

    def load(self, feed: str) -> Scan | None:
        """The feed's latest scan, or None when there is none (or it is unreadable, which is logged)."""
        ...


def _blob_name(feed: str) -> str:
    return f"scans/{feed}.json"


def _parse(feed: str, text: str | bytes, where: str) -> Scan | None:
    try:
        return Scan.model_validate_json(text)
    except ValidationError as exc:
        # A damaged cache only costs a fresh scan; say so, and let the caller rescan.
        log.warning(
            "cached scan unreadable; it will be rescanned", extra={"feed": feed, "where": where, "error": str(exc)}
        )
        return None


class LocalScanStore:
    """One JSON file per feed in a folder; written atomically (temp file + rename)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self, scan: Scan) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{scan.feed}.json"
        fd, temp = tempfile.mkstemp(dir=self.folder, prefix=f".{scan.feed}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(scan.model_dump_json())
        os.replace(temp, target)
        return str(target)

    def load(self, feed: str) -> Scan | None:
        path = self.folder / f"{feed}.json"
        if not path.exists():
            return None
        return _parse(feed, path.read_bytes(), str(path))


class BlobScanStore:
    """One blob per feed in a container (Azure Storage, or Azurite locally)."""

    def __init__(self, container: ContainerClient) -> None:
        self.container = container
        self._ensured = False

    def _ensure_container(self) -> None:
        if self._ensured:
            return
        try:
            self.container.create_container()
        except ResourceExistsError:
            log.debug("scan container exists", extra={"container": self.container.container_name})
        self._ensured = True

    def save(self, scan: Scan) -> str:
        self._ensure_container()
        blob = self.container.upload_blob(_blob_name(scan.feed), scan.model_dump_json(), overwrite=True)
        return blob.url

    def load(self, feed: str) -> Scan | None:
        try:
            data = self.container.download_blob(_blob_name(feed)).readall()
        except ResourceNotFoundError:
            return None
        return _parse(feed, data, f"{self.container.container_name}/{_blob_name(feed)}")


def open_scan_store(settings: Settings) -> ScanStore:
    if settings.scan_store == "local":
        return LocalScanStore(settings.scan_store_dir)
    if settings.scan_blob_connection_string is not None:
        container = ContainerClient.from_connection_string(
            settings.scan_blob_connection_string.get_secret_value(), settings.scan_blob_container
        )
    else:
        # Managed identity in Azure; azure-identity picks the credential from the environment.
        from azure.identity import DefaultAzureCredential

        container = ContainerClient(
            str(settings.scan_blob_account_url), settings.scan_blob_container, credential=DefaultAzureCredential()
        )
    return BlobScanStore(container)
