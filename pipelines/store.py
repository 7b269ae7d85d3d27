"""The per-portal local store: canonical tables with history, cursors, scores by day, task ledger.

Everything is Parquet or JSON under `<home>/store/<portal>/` (home defaults to `.heatsync/`):

    portal.json          the portal's time zone and currency, as last read from the CRM
    cursors.json         per-object high-water marks of the incremental extract
    contacts.parquet     latest version of every live contact (archived and merged-away ids removed)
    activities.parquet   every activity ever seen (history; scoring filters by `occurred_at`)
    deals.parquet        latest version of every deal × contact
    quarantine.parquet   records that failed validation, with reason, newest first per record
    scores/DATE.parquet  the scores computed for one day's partition
    ledger.parquet       every task heatsync decided to create: pending → created (crash safety)
    changes.parquet      every field value heatsync changed in the CRM: old → new, with run id

No Dagster here, so the command line and tests use it directly.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from scoring import contract

LEDGER_COLUMNS = {
    "task_key": "object",
    "contact_id": "object",
    "rule": "object",
    "period": "object",
    "status": "object",  # pending | created
    "task_id": "object",
    "created_at": "datetime64[ns, UTC]",
    "run_id": "object",
}
CHANGE_COLUMNS = ("contact_id", "field", "old", "new", "changed_at", "run_id")
QUARANTINE_COLUMNS = ("portal", "object_type", "object_id", "reason", "payload", "seen_at")


def default_home() -> Path:
    """`HEATSYNC_HOME` or `.heatsync/` at the project root."""
    env = os.environ.get("HEATSYNC_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / ".heatsync"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.reset_index(drop=True).to_parquet(tmp, index=False)
    os.replace(tmp, path)


@dataclass
class PortalStore:
    """Read and write one portal's tables. Writes are atomic (temp file + rename)."""

    home: Path
    portal: str

    @property
    def root(self) -> Path:
        return self.home / "store" / self.portal

    # ---- small JSON documents -------------------------------------------------------------
    def _read_json(self, name: str) -> dict[str, Any]:
        path = self.root / name
        if not path.exists():
            return {}
        return dict(json.loads(path.read_text(encoding="utf-8")))

    def _write_json(self, name: str, value: dict[str, Any]) -> None:
        data = json.dumps(value, indent=2, sort_keys=True).encode()
        _atomic_write_bytes(self.root / name, data)

    def portal_meta(self) -> dict[str, Any]:
        return self._read_json("portal.json")

    def save_portal_meta(self, meta: dict[str, Any]) -> None:
        self._write_json("portal.json", meta)

    def time_zone(self) -> str:
        return str(self.portal_meta().get("time_zone") or "UTC")

    def cursors(self) -> dict[str, str]:
        return {k: str(v) for k, v in self._read_json("cursors.json").items()}

    def save_cursors(self, cursors: dict[str, str]) -> None:
        self._write_json("cursors.json", cursors)

    # ---- canonical tables -----------------------------------------------------------------
    def table(self, name: str) -> pd.DataFrame:
        path = self.root / f"{name}.parquet"
        if not path.exists():
            return contract.empty(name)
        return contract.conform(pd.read_parquet(path), name)

    def merge_extract(
        self,
        contacts: pd.DataFrame,
        activities: pd.DataFrame,
        deals: pd.DataFrame,
        removed_contact_ids: list[str],
    ) -> dict[str, int]:
        """Upsert an extract into the store; returns how many rows each table now holds."""
        counts: dict[str, int] = {}
        removed = set(removed_contact_ids)
        for name, fresh in (("contacts", contacts), ("activities", activities), ("deals", deals)):
            keys = list(contract.KEYS[name])
            current = self.table(name)
            fresh = contract.conform(fresh, name)
            frames = [f for f in (current, fresh) if len(f)]
            merged = pd.concat(frames, ignore_index=True) if frames else current
            merged = merged.drop_duplicates(subset=keys, keep="last")
            if name == "contacts" and removed:
                merged = merged[~merged["contact_id"].isin(removed)]
            _write_parquet(self.root / f"{name}.parquet", merged)
            counts[name] = len(merged)
        return counts

    def update_current_fields(self, written: pd.DataFrame) -> None:
        """After a successful write-back, record the values the CRM now holds."""
        if written.empty:
            return
        contacts = self.table("contacts").set_index("contact_id")
        rows = written.set_index("contact_id")
        rows = rows[rows.index.isin(contacts.index)]
        for name in (c[len("changed_") :] for c in rows.columns if c.startswith("changed_")):
            mask = rows[f"changed_{name}"].astype(bool)
            target = f"current_{name}"
            if target not in contacts.columns:
                continue
            ids = rows.index[mask]
            contacts.loc[ids, target] = rows.loc[ids, name].to_numpy()
        _write_parquet(
            self.root / "contacts.parquet", contract.conform(contacts.reset_index(), "contacts")
        )

    # ---- quarantine -----------------------------------------------------------------------
    def add_quarantine(self, rows: pd.DataFrame, seen_at: pd.Timestamp) -> int:
        if rows.empty:
            return 0
        fresh = rows.copy()
        fresh["seen_at"] = seen_at
        current = self.quarantine()
        frames = [f for f in (current, fresh[list(QUARANTINE_COLUMNS)]) if len(f)]
        merged = pd.concat(frames, ignore_index=True)
        merged = merged.drop_duplicates(subset=["object_type", "object_id"], keep="last")
        _write_parquet(self.root / "quarantine.parquet", merged)
        return len(fresh)

    def quarantine(self) -> pd.DataFrame:
        path = self.root / "quarantine.parquet"
        if not path.exists():
            return pd.DataFrame({c: pd.Series(dtype="object") for c in QUARANTINE_COLUMNS})
        return pd.read_parquet(path)

    # ---- scores by day --------------------------------------------------------------------
    def scores_path(self, day: str) -> Path:
        return self.root / "scores" / f"{day}.parquet"

    def save_scores(self, day: str, scores: pd.DataFrame) -> None:
        _write_parquet(self.scores_path(day), scores)

    def scores(self, day: str) -> pd.DataFrame | None:
        path = self.scores_path(day)
        return pd.read_parquet(path) if path.exists() else None

    def scored_days(self) -> list[str]:
        folder = self.root / "scores"
        if not folder.exists():
            return []
        return sorted(p.stem for p in folder.glob("*.parquet"))

    def previous_scores(self, day: str) -> tuple[str | None, pd.DataFrame | None]:
        """The latest scores of a day before `day` (trend and "turned hot" compare to it)."""
        earlier = [d for d in self.scored_days() if d < day]
        if not earlier:
            return None, None
        return earlier[-1], self.scores(earlier[-1])

    # ---- task ledger ----------------------------------------------------------------------
    def ledger(self) -> pd.DataFrame:
        path = self.root / "ledger.parquet"
        if not path.exists():
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in LEDGER_COLUMNS.items()})
        return pd.read_parquet(path)

    def save_ledger(self, ledger: pd.DataFrame) -> None:
        _write_parquet(self.root / "ledger.parquet", ledger[list(LEDGER_COLUMNS)])

    # ---- change log -----------------------------------------------------------------------
    def append_changes(self, changes: pd.DataFrame) -> None:
        if changes.empty:
            return
        path = self.root / "changes.parquet"
        current = pd.read_parquet(path) if path.exists() else None
        frames = [f for f in (current, changes[list(CHANGE_COLUMNS)]) if f is not None]
        _write_parquet(path, pd.concat(frames, ignore_index=True))

    def changes(self) -> pd.DataFrame:
        path = self.root / "changes.parquet"
        if not path.exists():
            return pd.DataFrame({c: pd.Series(dtype="object") for c in CHANGE_COLUMNS})
        return pd.read_parquet(path)

    # ---- mutual exclusion -----------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """An exclusive per-portal lock, so two runs on one portal never interleave writes."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
