"""Scan stores: a folder locally, blobs through azure-storage-blob against a real Azurite."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from azure.storage.blob import ContainerClient

from shared.config import load_settings
from shared.planning.scan import Band, Scan
from shared.planning.store import BlobScanStore, LocalScanStore, open_scan_store

SCAN = Scan(
    feed="nivoda-natural",
    scanned_at=datetime(2026, 11, 22, 9, 30, tzinfo=UTC),
    count_queries=3,
    bands=[Band(dpc_from=0, dpc_to=50, count=7), Band(dpc_from=50, dpc_to=None, count=2)],
)


def test_local_store_round_trip(tmp_path) -> None:
    store = LocalScanStore(tmp_path / "scans")
    assert store.load("nivoda-natural") is None
    where = store.save(SCAN)
    assert where.endswith("nivoda-natural.json")
    assert store.load("nivoda-natural") == SCAN
    assert [p.name for p in (tmp_path / "scans").iterdir()] == ["nivoda-natural.json"]  # no temp files left


def test_blob_store_round_trip_on_azurite(azurite: str) -> None:
    settings = load_settings(scan_store="blob", scan_blob_connection_string=azurite, scan_blob_container="scans-test")
    store = open_scan_store(settings)
    assert isinstance(store, BlobScanStore)
    assert store.load("nivoda-natural") is None  # container created on first save, absent before
    store.save(SCAN)
    assert store.load("nivoda-natural") == SCAN
    newer = SCAN.model_copy(update={"count_queries": 9})
    store.save(newer)  # overwrite
    assert open_scan_store(settings).load("nivoda-natural") == newer
    container = ContainerClient.from_connection_string(azurite, "scans-test")
    assert [b.name for b in container.list_blobs()] == ["scans/nivoda-natural.json"]


def test_blob_store_treats_a_damaged_blob_as_missing(azurite: str) -> None:
    container = ContainerClient.from_connection_string(azurite, "scans-damaged")
    container.create_container()
    container.upload_blob("scans/nivoda-labgrown.json", b"{truncated")
    assert BlobScanStore(container).load("nivoda-labgrown") is None


def test_blob_store_needs_a_way_in() -> None:
    from shared.config import ConfigError

    with pytest.raises(ConfigError, match=r"SCAN_BLOB|scan_blob"):
        load_settings(scan_store="blob")
