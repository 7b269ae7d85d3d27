"""The per-account local store: canonical tables with history, cursors, scores by day, task ledger.

A store belongs to one CRM account, not to a local portal name: the first extract binds the
local name to the account the credentials reach (`<home>/accounts.json` maps name -> account
key such as `hubspot-4471803`), and the tables live under `<home>/accounts/<account key>/`.
Two local names for one account share one store; pointing a name at another account switches
it to that account's own store (a full extract on first use). Before a name is bound its store
is `<home>/store/<name>/` (the layout before accounts; moved into place on binding when it was
filled from the same account). Home defaults to `.heatsync/`; `<home>/locks/` holds the run locks
of `heatsync run` (one per local name and per account), `<home>/scratch/` the chunks an extract
spills while it runs (`scratch`; merged chunk by chunk, pipelines.table_merge).
HEATSYNC_STORE_URI puts what is described here under another folder or an S3 prefix instead of
`<home>` (pipelines.storage; the locks then move to PostgreSQL when HEATSYNC_POSTGRES_URL is
set). Inside a store:

    portal.json          the portal's time zone and currency, as last read from the CRM
    cursors.json         per-object high-water marks of the incremental extract
    contacts.parquet     latest version of every live contact (archived and merged-away ids removed)
    activities.parquet   every activity ever seen (history; scoring filters by `occurred_at`)
    deals.parquet        latest version of every deal × contact
    quarantine.parquet   records that failed validation, with reason, newest first per record
    scores/DATE.parquet  the scores computed for one day's partition
    ledger.parquet       every task heatsync decided to create: pending → created (crash safety)
    log/*.parquet        the decision log, one file per run step: every field written (old → new,
                         with the score's reasons), every field kept and why, every task created
                         and every task not created and why (DECISION_COLUMNS)
    written.parquet      heatsync's latest write of each contact's field (value, when): a value
                         in the CRM that differs was set by someone else
    changes.parquet      the field changes of stores written before the decision log (read only)
    erasures.jsonl       one line per `heatsync forget`: when, a hash of the contact id, how many
                         rows each table lost (no personal data)

The canonical `portal` column of every table, and so the prefix of every task key, is the
account key. No Dagster here, so the command line and tests use it directly.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import logging
import operator
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast
from uuid import uuid4

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from connectors.atomic import atomic_open
from connectors.base import QUARANTINE_COLUMNS as EXTRACT_QUARANTINE_COLUMNS
from connectors.sink import TableSink
from pipelines import storage
from pipelines.storage import ObjectPath, StorePath
from pipelines.table_merge import merge_table, open_parquet
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
# kind: field_written | field_kept | task_created | task_not_created; name: the field or the
# task's rule; at: the as-of of the run that decided
DECISION_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("at", pa.timestamp("ns", tz="UTC")),
        ("contact_id", pa.string()),
        ("kind", pa.string()),
        ("name", pa.string()),
        ("old", pa.string()),
        ("new", pa.string()),
        ("reason", pa.string()),
        ("task_key", pa.string()),
    ]
)
DECISION_COLUMNS = tuple(DECISION_SCHEMA.names)
# what `heatsync history` reads of a day's scores
SCORE_HISTORY_SCHEMA = pa.schema(
    [
        ("contact_id", pa.string()),
        ("temperature", pa.string()),
        ("score", pa.float64()),
        ("segment", pa.string()),
        ("trend", pa.string()),
        ("reasons", pa.string()),
    ]
)
DECISION_KINDS = ("field_written", "field_kept", "task_created", "task_not_created")
# what a connector quarantines, and when the store last saw it
QUARANTINE_COLUMNS = (*EXTRACT_QUARANTINE_COLUMNS, "seen_at")
ACCOUNTS_FILE = "accounts.json"
ERASURES_FILE = "erasures.jsonl"
# the tables `forget` removes a contact from, in the order it reports them
FORGET_TABLES = (
    "contacts",
    "activities",
    "deals",
    "quarantine",
    "scores",
    "log",
    "changes",
    "written",
    "ledger",
)
# where a quarantined record's payload names a contact: a key holding a contact id, a list of
# associated contacts, or an amoCRM entity reference
_CONTACT_ID_KEYS = ("contact_id", "contactId")
_CONTACT_LIST_KEYS = ("contacts", "contact")
_CONTACT_ENTITY_TYPES = ("contact", "contacts")
_CONTACT_OBJECT_TYPES = ("contact", "contacts")
# amoCRM's contact notes: their entity_id is the contact
_CONTACT_NOTE_OBJECT_TYPES = ("notes",)

log = logging.getLogger("heatsync")


def account_key(crm: str, account_id: str) -> str:
    """The identity of a CRM account: the CRM's name and the CRM's own id for it."""
    return f"{crm}-{account_id}"


def default_home() -> Path:
    """`HEATSYNC_HOME` or `.heatsync/` at the project root."""
    env = os.environ.get("HEATSYNC_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / ".heatsync"


class StoreFull(OSError):
    """The disk (or the user's quota) ran out while a file of the store was saved; the file
    being replaced is left as it was (atomic writes), so the store is consistent, one save short."""


_FULL = (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def _saving(path: StorePath) -> Iterator[BinaryIO]:
    """`atomic_open(path)`, with a full disk reported as StoreFull naming the table and folder;
    on an object store, one upload of the whole file (pipelines.storage)."""
    if isinstance(path, ObjectPath):
        with storage.object_writer(path) as handle:
            yield handle
        return
    try:
        with atomic_open(path) as handle:
            yield handle
    except OSError as exc:
        if exc.errno not in _FULL or isinstance(exc, StoreFull):
            raise
        table = path.name.split(".")[0]
        if path.parent.name in ("scores", "log"):
            table = f"{path.parent.name}/{table}"
        raise StoreFull(
            exc.errno,
            f"no space left on device while saving {table} in {path.parent}; "
            "the previous version is intact",
        ) from exc


def _write_bytes(path: StorePath, data: bytes) -> None:
    with _saving(path) as handle:
        handle.write(data)


def _write_parquet(path: StorePath, frame: pd.DataFrame) -> None:
    with _saving(path) as handle:
        frame.reset_index(drop=True).to_parquet(handle, index=False)


@dataclass
class PortalStore:
    """Read and write the tables of the account a local portal name is bound to.

    Writes are atomic (temp file, fsync, rename; one whole upload on an object store). `portal`
    is the local name (a Dagster partition); `key` is the account key once bound, the local name
    before. `home` is the local folder of the run locks; the tables live where `location` says
    (pipelines.storage: a folder or s3://bucket/prefix), by default HEATSYNC_STORE_URI, else
    `home` itself.
    """

    home: Path
    portal: str
    location: str = ""

    def __post_init__(self) -> None:
        self._locked: set[str] = set()
        uri = self.location or os.environ.get(storage.URI_VARIABLE, "")
        self.base: StorePath = storage.store_location(uri, self.home)

    @property
    def account(self) -> str | None:
        """The account key this name is bound to, or None before the first extract."""
        return _read_accounts(self.base).get(self.portal)

    @property
    def key(self) -> str:
        return self.account or self.portal

    @property
    def root(self) -> Path:
        """The store's folder; on an object store an ObjectPath (pipelines.storage), which
        offers the Path operations that read but no local file I/O."""
        return cast(Path, self._root())

    def _root(self) -> StorePath:
        account = self.account
        if account is None:
            return self.base / "store" / self.portal
        return self.base / "accounts" / account

    def bind(self, crm: str, account_id: str) -> str | None:
        """Bind the local name to the CRM account `crm`/`account_id`; say what changed, if anything.

        A store filled before binding from the same account is moved into place (so its cursors,
        scores and task ledger carry over). A store of another account is left where it is.
        """
        account = account_key(crm, account_id)
        accounts = _read_accounts(self.base)
        before = accounts.get(self.portal)
        if before == account:
            return None
        target = self.base / "accounts" / account
        legacy = self.base / "store" / self.portal
        moved = False
        if before is None and legacy.is_dir() and not storage.filled(target):
            meta_path = legacy / "portal.json"
            meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
            if str(meta.get("portal_id", "")) == str(account_id):
                storage.move_folder(legacy, target)
                moved = True
        accounts[self.portal] = account
        _write_accounts(self.base, accounts)
        others = sorted(n for n, a in accounts.items() if a == account and n != self.portal)
        if before is not None:
            message = (
                f"portal {self.portal!r} now reaches {account} (it was {before}); "
                f"{account} has its own store, the other account's is kept"
            )
        elif moved:
            message = f"portal {self.portal!r} is {account}; its store moved under accounts/"
        else:
            message = f"portal {self.portal!r} is {account}"
        if others:
            message += f"; it shares store and task keys with {', '.join(others)}"
        log.info("%s", message)
        return message

    def snapshot(self, home: Path) -> PortalStore:
        """A copy of this store (and the name's binding) under another home: the dry run works
        on it so that nothing it does is kept. The copy is a local folder wherever this one is."""
        copy = PortalStore(home, self.portal, location=str(home))
        account = self.account
        if account is not None:
            _write_accounts(home, {self.portal: account})
        root = self._root()
        if isinstance(root, ObjectPath):
            storage.download(root, copy.root)
        elif root.is_dir():
            shutil.copytree(root, copy.root, ignore=shutil.ignore_patterns(".lock", RUN_LOCK_FILE))
        return copy

    # ---- small JSON documents -------------------------------------------------------------
    def _read_json(self, name: str) -> dict[str, Any]:
        path = self._root() / name
        if not path.exists():
            return {}
        return dict(json.loads(path.read_text(encoding="utf-8")))

    def _write_json(self, name: str, value: dict[str, Any]) -> None:
        data = json.dumps(value, indent=2, sort_keys=True).encode()
        _write_bytes(self._root() / name, data)

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
        path = self._root() / f"{name}.parquet"
        if not path.exists():
            return contract.empty(name)
        return self._own(contract.conform(storage.read_frame(path), name))

    def scoring_table(self, name: str, as_of: pd.Timestamp) -> pd.DataFrame:
        """A table as scoring reads it for `as_of`: the contract's columns only (not what a
        connector adds, such as an activity's CRM id or a deal's name), and of the activities
        those that occurred by `as_of` (scoring leaves the later ones out itself); the reader
        skips the rest of the file (Parquet column and row-group pruning)."""
        path = self._root() / f"{name}.parquet"
        if not path.exists():
            return contract.empty(name)
        present = set(open_parquet(path).schema_arrow.names)
        columns = [c for c in contract.TABLES[name] if c in present]
        filters = None
        if name == "activities" and "occurred_at" in present:
            filters = [("occurred_at", "<=", pd.Timestamp(as_of).tz_convert("UTC"))]
        frame = storage.read_frame(path, columns=columns, filters=filters)
        return self._own(contract.conform(frame, name))

    def _own(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows of this store carry its key as `portal` (rows saved under a local name too)."""
        if "portal" in frame.columns and len(frame):
            frame["portal"] = self.key
        return frame

    def merge_extract(
        self,
        contacts: pd.DataFrame | TableSink,
        activities: pd.DataFrame | TableSink,
        deals: pd.DataFrame | TableSink,
        removed_contact_ids: list[str],
    ) -> dict[str, int]:
        """Upsert an extract into the store; returns how many rows each table now holds.

        Each table is merged chunk by chunk (pipelines.table_merge), a sink's rows as they were
        spilled: a full extract of a big account never sits in memory whole."""
        counts: dict[str, int] = {}
        for name, fresh in (("contacts", contacts), ("activities", activities), ("deals", deals)):
            if isinstance(fresh, pd.DataFrame):
                fresh = contract.conform(fresh, name)
            counts[name] = merge_table(
                name,
                self._root() / f"{name}.parquet",
                fresh,
                self.key,
                removed_contact_ids,
                _saving,
            )
        return counts

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """A local folder for an extract's chunks, emptied before and deleted after; one per
        store under `<home>/scratch/` (take the store's lock around it)."""
        digest = hashlib.sha256(str(self._root()).encode()).hexdigest()[:16]
        folder = self.home / "scratch" / digest
        shutil.rmtree(folder, ignore_errors=True)  # a killed run's chunks
        folder.mkdir(parents=True, exist_ok=True)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

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
            self._root() / "contacts.parquet", contract.conform(contacts.reset_index(), "contacts")
        )

    # ---- what heatsync last wrote ---------------------------------------------------------
    def written(self) -> pd.DataFrame:
        """heatsync's latest write of each (contact, field): contact_id, field, value (text),
        at. A person's edit is told from heatsync's own value by it (pipelines.human_edits)."""
        path = self._root() / "written.parquet"
        if not path.exists():
            return pd.DataFrame(
                {
                    "contact_id": pd.Series(dtype=object),
                    "field": pd.Series(dtype=object),
                    "value": pd.Series(dtype=object),
                    "at": pd.Series(dtype="datetime64[ns, UTC]"),
                }
            )
        return storage.read_frame(path)

    def remember_written(self, written: pd.DataFrame, at: pd.Timestamp) -> None:
        """Record the values of `written` (field_changes rows the CRM accepted) as heatsync's
        latest writes, replacing earlier ones of the same contact and field."""
        flags = [c for c in written.columns if c.startswith("changed_")]
        if written.empty or not flags:
            return
        values = written.melt(
            id_vars="contact_id",
            value_vars=[c.removeprefix("changed_") for c in flags],
            var_name="field",
            value_name="value",
        )
        changed = written.melt(id_vars="contact_id", value_vars=flags, value_name="changed")
        values = values[changed["changed"].astype(bool).to_numpy()]
        values = values.assign(
            contact_id=values["contact_id"].astype(str),
            value=values["value"].astype("object").where(values["value"].notna(), "").astype(str),
            at=at,
        )
        merged = pd.concat([self.written(), values], ignore_index=True)
        merged = merged.drop_duplicates(["contact_id", "field"], keep="last")
        _write_parquet(self._root() / "written.parquet", merged.reset_index(drop=True))

    # ---- quarantine -----------------------------------------------------------------------
    def add_quarantine(self, rows: pd.DataFrame, seen_at: pd.Timestamp) -> int:
        if rows.empty:
            return 0
        fresh = self._own(rows.copy())
        fresh["seen_at"] = seen_at
        current = self.quarantine()
        frames = [f for f in (current, fresh[list(QUARANTINE_COLUMNS)]) if len(f)]
        merged = pd.concat(frames, ignore_index=True)
        merged = merged.drop_duplicates(subset=["object_type", "object_id"], keep="last")
        _write_parquet(self._root() / "quarantine.parquet", merged)
        return len(fresh)

    def quarantine(self) -> pd.DataFrame:
        path = self._root() / "quarantine.parquet"
        if not path.exists():
            return pd.DataFrame({c: pd.Series(dtype="object") for c in QUARANTINE_COLUMNS})
        return storage.read_frame(path)

    # ---- scores by day --------------------------------------------------------------------
    def scores_path(self, day: str) -> Path:
        return cast(Path, self._scores_path(day))

    def _scores_path(self, day: str) -> StorePath:
        return self._root() / "scores" / f"{day}.parquet"

    def save_scores(self, day: str, scores: pd.DataFrame) -> None:
        _write_parquet(self._scores_path(day), scores)

    def scores(self, day: str) -> pd.DataFrame | None:
        path = self._scores_path(day)
        return self._own(storage.read_frame(path)) if path.exists() else None

    def scored_days(self) -> list[str]:
        folder = self._root() / "scores"
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
        path = self._root() / "ledger.parquet"
        if not path.exists():
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in LEDGER_COLUMNS.items()})
        ledger = storage.read_frame(path)
        # keys written under a local name carry that name: give them the account's prefix
        identity = ledger["task_key"].astype(str).str.split(":", n=1).str[1]
        ledger["task_key"] = self.key + ":" + identity
        return ledger

    def save_ledger(self, ledger: pd.DataFrame) -> None:
        _write_parquet(self._root() / "ledger.parquet", ledger[list(LEDGER_COLUMNS)])

    def adopt_crm_tasks(self, own_tasks: pd.DataFrame) -> int:
        """Record heatsync tasks found in the CRM that the ledger does not know (a lost or new
        store): the CRM, not the local folder, is the memory of which tasks exist. Keys of other
        accounts or local names are ignored. Returns how many were added."""
        if own_tasks is None or own_tasks.empty:
            return 0
        keys = own_tasks["task_key"].astype(str)
        parts = keys.str.split(":")
        ours = keys.str.startswith(self.key + ":") & (parts.str.len() == 4)
        ledger = self.ledger()
        settled = ledger.loc[ledger["status"] == "created", "task_key"]
        fresh = own_tasks[ours & ~keys.isin(settled)]
        if fresh.empty:
            return 0
        fields = fresh["task_key"].astype(str).str.split(":", expand=True)
        adopted = pd.DataFrame(
            {
                "task_key": fresh["task_key"].astype(str),
                "contact_id": fields[1],
                "rule": fields[2],
                "period": fields[3],
                "status": "created",
                "task_id": fresh["task_id"].astype(str),
                "created_at": pd.to_datetime(fresh["created_at"], utc=True),
                "run_id": "found in the CRM",
            }
        ).astype({"created_at": LEDGER_COLUMNS["created_at"]})
        rest = ledger[~ledger["task_key"].isin(adopted["task_key"])]
        frames = [f for f in (rest, adopted) if len(f)]
        self.save_ledger(pd.concat(frames, ignore_index=True))
        return len(adopted)

    # ---- decision log ---------------------------------------------------------------------
    def append_decisions(self, rows: pd.DataFrame, step: str) -> int:
        """Add a run step's decisions (DECISION_COLUMNS) as a file of its own under log/: the
        log grows without rewriting what is there. Returns how many rows were written."""
        if rows.empty:
            return 0
        table = pa.Table.from_pandas(
            _decision_frame(rows), schema=DECISION_SCHEMA, preserve_index=False
        )
        at = pd.Timestamp(rows["at"].min()).strftime("%Y%m%dT%H%M%S")
        run = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(rows["run_id"].iloc[0]))
        path = self._root() / "log" / f"{at}-{step}-{run}-{uuid4().hex[:8]}.parquet"
        with _saving(path) as handle:
            pq.write_table(table, handle)
        return len(table)

    def decisions(
        self,
        contact_id: str | None = None,
        since: pd.Timestamp | None = None,
        kind: str | None = None,
    ) -> pd.DataFrame:
        """The decision log, oldest first: one contact's rows only when `contact_id` is given,
        only decisions at or after `since`, only of `kind` when given. Field changes of an older
        store's changes.parquet are read as field_written rows."""
        root = self._root()
        files: list[StorePath] = sorted((root / "log").glob("*.parquet"), key=str)
        if since is not None:
            stamp = pd.Timestamp(since).tz_convert("UTC").strftime("%Y%m%dT%H%M%S")
            files = [f for f in files if f.name[: len(stamp)] >= stamp]
        frames = []
        if kind in (None, "field_written"):
            frames.append(_legacy_changes(root / "changes.parquet", contact_id))
        if files:
            conditions = [
                pads.field(column) == str(value)
                for column, value in (("contact_id", contact_id), ("kind", kind))
                if value is not None
            ]
            match = functools.reduce(operator.and_, conditions) if conditions else None
            dataset = storage.dataset(files, DECISION_SCHEMA)
            frames.append(dataset.to_table(filter=match).to_pandas())
        frames = [f for f in frames if len(f)]
        out = _decision_frame(
            pd.concat(frames) if frames else pd.DataFrame(columns=list(DECISION_COLUMNS))
        )
        if since is not None:
            out = out[out["at"] >= since]
        return out.sort_values("at", kind="stable").reset_index(drop=True)

    def changes(self) -> pd.DataFrame:
        """Every field value heatsync wrote (CHANGE_COLUMNS), from the decision log."""
        written = self.decisions(kind="field_written")
        return pd.DataFrame(
            {
                "contact_id": written["contact_id"],
                "field": written["name"],
                "old": written["old"],
                "new": written["new"],
                "changed_at": written["at"],
                "run_id": written["run_id"],
            }
        ).reset_index(drop=True)

    def contact(self, contact_id: str) -> pd.DataFrame:
        """The stored row of one contact (none when the store does not know it), read with a
        filter instead of the whole table."""
        path = self._root() / "contacts.parquet"
        if not path.exists():
            return contract.empty("contacts")
        found = storage.read_frame(path, filters=[("contact_id", "==", str(contact_id))])
        return self._own(contract.conform(found, "contacts"))

    def contact_scores(self, contact_id: str, days: list[str]) -> pd.DataFrame:
        """One contact's scores (SCORE_HISTORY_SCHEMA) on each of `days` it was scored on, with a
        `day` column: all days' files are scanned at once, for that contact only."""
        files = [p for p in map(self._scores_path, days) if p.exists()]
        if not files:
            return pd.DataFrame({c: [] for c in (*SCORE_HISTORY_SCHEMA.names, "day")})
        dataset = storage.dataset(files, SCORE_HISTORY_SCHEMA)
        found = dataset.to_table(
            filter=pads.field("contact_id") == str(contact_id),
            columns=[*SCORE_HISTORY_SCHEMA.names, "__filename"],
        ).to_pandas()
        day = found.pop("__filename").map(lambda name: Path(name).stem)
        return found.assign(day=day).sort_values("day", kind="stable").reset_index(drop=True)

    # ---- erasure ---------------------------------------------------------------------------
    def forget(self, contact_id: str, apply: bool = True) -> dict[str, int]:
        """Remove every row of `contact_id` from the store's files: rows per table (FORGET_TABLES;
        `scores` and `log` summed over their files). With `apply=False` only count them.

        Each file that changes is rewritten atomically with its schema; a log file left empty
        is deleted, a day's scores file stays (the day remains scored). Take the lock around it.
        Cursors, portal.json and config/ hold no contact and are left as they are.
        """
        contact_id = str(contact_id)
        removed = dict.fromkeys(FORGET_TABLES, 0)
        root = self._root()
        files: list[tuple[str, StorePath, str]] = [
            (name, root / f"{name}.parquet", "contact_id")
            for name in ("contacts", "activities", "deals", "written", "ledger", "changes")
        ]
        for name in ("scores", "log"):
            found: list[StorePath] = sorted((root / name).glob("*.parquet"), key=str)
            files += [(name, p, "contact_id") for p in found]
        for name, path, column in files:
            if not path.exists():
                continue
            table = storage.read_table(path)
            if column not in table.column_names:
                continue
            ids = pc.cast(table[column], pa.string())
            keep = pc.fill_null(pc.not_equal(ids, contact_id), True)
            removed[name] += _drop(path, table, keep, apply, delete_empty=name == "log")
        path = root / "quarantine.parquet"
        if path.exists():
            table = storage.read_table(path)
            frame = table.select(["object_type", "object_id", "payload"]).to_pandas()
            mine = [
                quarantined_mentions(str(t), o, p, contact_id)
                for t, o, p in frame.itertuples(index=False)
            ]
            keep = pa.array([not m for m in mine], type=pa.bool_())
            removed["quarantine"] += _drop(path, table, keep, apply, delete_empty=False)
        return removed

    def record_erasure(self, contact_id: str, removed: dict[str, int], at: pd.Timestamp) -> Path:
        """Append the erasure to erasures.jsonl: when, the SHA-256 of "<account key>:<contact
        id>" (no name, e-mail or phone; whoever knows the id can check it was erased) and the rows
        removed per table. Returns the file."""
        digest = hashlib.sha256(f"{self.key}:{contact_id}".encode()).hexdigest()
        line = {
            "at": pd.Timestamp(at).tz_convert("UTC").isoformat(),
            "account": self.key,
            "contact_sha256": digest,
            "removed": {k: int(v) for k, v in removed.items() if v},
        }
        path = self._root() / ERASURES_FILE
        before = path.read_bytes() if path.exists() else b""
        _write_bytes(path, before + (json.dumps(line, sort_keys=True) + "\n").encode())
        return cast(Path, path)

    # ---- mutual exclusion -----------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """An exclusive lock on the store, so two runs on one account never interleave writes.

        Re-entrant within this object: the extract takes it again once binding has moved the
        store to its account's folder. A store on an object store is locked in PostgreSQL when
        HEATSYNC_POSTGRES_URL is set (every machine), else by a file under `<home>/locks/` (the
        processes of one machine; docs/operations.md, "Shared state on many machines").
        """
        import fcntl

        root = self._root()
        if str(root) in self._locked:
            yield
            return
        shared = self._shared_locks()
        if shared:
            with storage.postgres_lock(shared, f"heatsync store {root}"):
                self._locked.add(str(root))
                try:
                    yield
                finally:
                    self._locked.discard(str(root))
            return
        if isinstance(root, ObjectPath):
            digest = hashlib.sha256(str(root).encode()).hexdigest()[:20]
            path = self.home / "locks" / f"store-{digest}.lock"
        else:
            path = root / ".lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            self._locked.add(str(root))
            try:
                yield
            finally:
                self._locked.discard(str(root))
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextmanager
    def run_lock(
        self,
        wait_s: float = 0.0,
        waiting: Callable[[str], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[None]:
        """One whole `heatsync run` of this portal at a time (the per-step `lock` alone lets two
        runs take turns step by step, both writing). Held on the local name and, once bound, on
        the account (two names of one account exclude each other too), in `<home>/locks/`, which
        binding never moves. When another process holds it: `waiting(holder)` once (holder: its
        pid as it wrote it), then tries again until `wait_s` seconds have passed or `cancelled()`
        says to give up, and raises StoreBusy."""
        names = [f"name-{self.portal}"] + ([self.account] if self.account else [])
        shared = self._shared_locks()
        with contextlib.ExitStack() as stack:
            deadline = time.monotonic() + wait_s
            for name in names:
                if shared:
                    lock = f"heatsync run {self.base} {name}"
                    refused = _refusal(lock, deadline, waiting, cancelled)
                    stack.enter_context(storage.postgres_lock(shared, lock, refused))
                    continue
                path = self.home / "locks" / f"{name}.lock"
                stack.enter_context(_run_lock(path, deadline, waiting, cancelled))
            yield

    def _shared_locks(self) -> str:
        """The PostgreSQL URL whose advisory locks guard a store on an object store, or ""."""
        if not isinstance(self.base, ObjectPath):
            return ""
        return os.environ.get(storage.POSTGRES_VARIABLE, "").strip()


RUN_LOCK_FILE = ".run.lock"


class StoreBusy(RuntimeError):
    """Another process holds the run lock of the portal (its pid in `holder`, when known)."""

    def __init__(self, path: Path | str, holder: str) -> None:
        super().__init__(f"{path} is held by {holder or 'another process'}")
        self.path = path
        self.holder = holder


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return f"pid {text}" if text.isdigit() else text


def _refusal(
    lock: str,
    deadline: float,
    waiting: Callable[[str], None] | None,
    cancelled: Callable[[], bool] | None,
) -> Callable[[str], None]:
    """What a refused PostgreSQL run lock does: what `_run_lock` does when the file is held."""
    told: list[str] = []

    def refused(holder: str) -> None:
        if time.monotonic() >= deadline or (cancelled is not None and cancelled()):
            raise StoreBusy(f"the PostgreSQL lock {lock!r}", holder)
        if waiting is not None and not told:
            waiting(holder)
            told.append(holder)

    return refused


@contextmanager
def _run_lock(
    path: Path,
    deadline: float,
    waiting: Callable[[str], None] | None,
    cancelled: Callable[[], bool] | None,
) -> Iterator[None]:
    """An exclusive flock on `path` holding this process's pid, tried without blocking until
    `deadline` (time.monotonic()); the kernel releases it when the process dies, however."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(path)
                if time.monotonic() >= deadline or (cancelled is not None and cancelled()):
                    raise StoreBusy(path, holder) from None
                if waiting is not None and not told:
                    waiting(holder)
                    told = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _decision_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with exactly DECISION_COLUMNS: text as text or None, `at` in UTC."""
    out = pd.DataFrame(index=rows.index)
    for name in DECISION_COLUMNS:
        column = rows[name] if name in rows.columns else pd.Series(None, index=rows.index)
        if name == "at":
            out[name] = pd.to_datetime(column, utc=True).astype("datetime64[ns, UTC]")
        else:
            text = column.astype("object")
            out[name] = text.where(text.isna(), text.astype(str)).where(text.notna(), None)
    return out.reset_index(drop=True)


def _legacy_changes(path: StorePath, contact_id: str | None) -> pd.DataFrame:
    """A changes.parquet of an older store as field_written decision rows."""
    if not path.exists():
        return pd.DataFrame(columns=list(DECISION_COLUMNS))
    filters = None if contact_id is None else [("contact_id", "==", str(contact_id))]
    changes = storage.read_frame(path, filters=filters)
    # values were saved as text, an empty one as "None" or "nan"
    changes[["old", "new"]] = changes[["old", "new"]].replace(
        {"None": None, "nan": None, "NaT": None}
    )
    return pd.DataFrame(
        {
            "run_id": changes["run_id"],
            "at": changes["changed_at"],
            "contact_id": changes["contact_id"],
            "kind": "field_written",
            "name": changes["field"],
            "old": changes["old"],
            "new": changes["new"],
        }
    )


def _drop(path: StorePath, table: pa.Table, keep: pa.Array, apply: bool, delete_empty: bool) -> int:
    """Rewrite `path` with the rows of `table` where `keep` holds (when `apply`); how many go."""
    kept = table.filter(keep)
    gone = table.num_rows - kept.num_rows
    if apply and gone:
        if delete_empty and kept.num_rows == 0:
            path.unlink()
        else:
            with _saving(path) as handle:
                pq.write_table(kept, handle)
    return gone


def quarantined_mentions(object_type: str, object_id: Any, payload: Any, contact_id: str) -> bool:
    """Whether a quarantine row belongs to `contact_id`: the record is that contact, or its
    payload (the record as received, JSON) names it as a contact: a `contact_id`/`contactId`
    value, an entry of a `contacts` list (an id, or an object with that `id`/`toObjectId`), an
    amoCRM entity reference of type contact, or the `entity_id` of an amoCRM contact note. The
    same number elsewhere (a deal's or a note's own id, an amount) is not the contact."""
    if object_type in _CONTACT_OBJECT_TYPES and object_id is not None:
        if str(object_id) == contact_id:
            return True
    if not isinstance(payload, str) or contact_id not in payload:
        return False
    try:
        record = json.loads(payload)
    except ValueError:
        return False
    if object_type in _CONTACT_NOTE_OBJECT_TYPES and isinstance(record, dict):
        if _same(record.get("entity_id"), contact_id):
            return True
    return _names_contact(record, contact_id)


def _same(value: Any, contact_id: str) -> bool:
    return value is not None and not isinstance(value, (dict, list)) and str(value) == contact_id


def _names_contact(value: Any, contact_id: str) -> bool:
    if isinstance(value, list):
        return any(_names_contact(v, contact_id) for v in value)
    if not isinstance(value, dict):
        return False
    if any(_same(value.get(k), contact_id) for k in _CONTACT_ID_KEYS):
        return True
    entity = str(value.get("entity_type") or value.get("entityType") or "").lower()
    if entity in _CONTACT_ENTITY_TYPES and _same(value.get("entity_id"), contact_id):
        return True
    for key in _CONTACT_LIST_KEYS:
        listed = value.get(key)
        if isinstance(listed, dict):  # HubSpot: {"contacts": {"results": [...]}}
            listed = listed.get("results")
        if isinstance(listed, list) and any(_listed(item, contact_id) for item in listed):
            return True
    return any(_names_contact(v, contact_id) for v in value.values())


def _listed(item: Any, contact_id: str) -> bool:
    if isinstance(item, dict):
        return any(_same(item.get(k), contact_id) for k in ("id", "toObjectId"))
    return _same(item, contact_id)


def _read_accounts(base: StorePath) -> dict[str, str]:
    path = base / ACCOUNTS_FILE
    if not path.exists():
        return {}
    return {str(k): str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


def _write_accounts(base: StorePath, accounts: dict[str, str]) -> None:
    data = json.dumps(accounts, indent=2, sort_keys=True).encode()
    _write_bytes(base / ACCOUNTS_FILE, data)
