"""An emulator's state in one JSON file: atomic save and load, and a debounced background saver."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Self

from connectors.atomic import atomic_write_text


class JsonFileState:
    """Mixin of a state that has `lock`, `version` (bumped on every mutation) and `to_json` /
    `from_json`: it gains `save` and `load`."""

    lock: threading.RLock
    version: int

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        raise NotImplementedError

    def save(self, path: str | Path) -> None:
        """Write the state as JSON atomically (temp file, fsync, rename)."""
        with self.lock:
            text = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))
        atomic_write_text(Path(path), text)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        with open(path, encoding="utf-8") as fh:
            return cls.from_json(json.load(fh))


class StatePersister:
    """Saves a state to a file after mutations, at most once per `debounce_s`, and on `close`.

    `save_missing`: also save an unchanged state when the file does not exist yet.
    """

    def __init__(
        self,
        state: JsonFileState,
        path: str | Path,
        debounce_s: float = 1.0,
        *,
        save_missing: bool = False,
        name: str = "sandbox-persist",
    ) -> None:
        self.state = state
        self.path = Path(path)
        self.debounce_s = debounce_s
        missing = save_missing and not self.path.exists()
        self._saved_version = -1 if missing else state.version
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.debounce_s):
            self.flush()

    def flush(self) -> bool:
        """Save now if anything changed since the last save; returns whether it saved."""
        version = self.state.version
        if version == self._saved_version:
            return False
        self.state.save(self.path)
        self._saved_version = version
        return True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()
