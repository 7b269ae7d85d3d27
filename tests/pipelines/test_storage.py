"""HEATSYNC_STORE_URI read into a place for the store (pipelines.storage)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines.storage import ObjectPath, StoreUriError, store_location
from pipelines.store import PortalStore


def test_the_uri_names_a_folder_or_a_bucket_and_prefix(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert store_location("", home) == home
    assert store_location(f"file://{tmp_path}/shared", home) == tmp_path / "shared"
    assert store_location(str(tmp_path / "shared"), home) == tmp_path / "shared"
    env = {"HEATSYNC_S3_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "us-east-1"}
    place = store_location("s3://bucket/some/prefix/", home, env)
    assert isinstance(place, ObjectPath)
    assert place.key == "bucket/some/prefix"
    assert str(place / "accounts.json") == "s3://bucket/some/prefix/accounts.json"
    assert (place / "scores" / "2026-05-01.parquet").stem == "2026-05-01"
    assert isinstance(store_location("s3://bucket", home, env), ObjectPath)
    for wrong in ("s3:///prefix", "gs://bucket/prefix"):
        with pytest.raises(StoreUriError):
            store_location(wrong, home, env)


def test_a_store_in_another_folder_keeps_its_locks_at_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    monkeypatch.setenv("HEATSYNC_STORE_URI", str(shared))
    store = PortalStore(tmp_path / "home", "default")
    with store.run_lock(), store.lock():
        store.save_scores("2026-05-01", pd.DataFrame({"contact_id": ["1"], "score": [1.0]}))
    assert (shared / "store" / "default" / "scores" / "2026-05-01.parquet").is_file()
    assert (tmp_path / "home" / "locks" / "name-default.lock").is_file()
    assert not (tmp_path / "home" / "store").exists()
    assert PortalStore(tmp_path / "home", "default").scored_days() == ["2026-05-01"]
