"""heatsync scoring: customer temperature, segments, touches and task plans from canonical tables.

Pure pandas, no I/O except the packaged YAML defaults and locales; never imports dagster.

The package is lazy: `import scoring.contract` (the canonical tables, docs/contract.md) loads that
module alone, so a connector that builds canonical tables does not load the scoring engine. The
names below are imported from their modules on first use, so `from scoring import score_contacts`
works as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scoring.config import ScoringConfig, load_config
    from scoring.explain import load_locale
    from scoring.score import EXTRA_SCORE_COLUMNS, score_contacts
    from scoring.tasks import LEFT_OUT_COLUMNS, SKIP_REASONS, TASK_COLUMNS, TaskPlan, plan_tasks

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "ScoringConfig": "scoring.config",
    "load_config": "scoring.config",
    "load_locale": "scoring.explain",
    "EXTRA_SCORE_COLUMNS": "scoring.score",
    "score_contacts": "scoring.score",
    "LEFT_OUT_COLUMNS": "scoring.tasks",
    "SKIP_REASONS": "scoring.tasks",
    "TASK_COLUMNS": "scoring.tasks",
    "TaskPlan": "scoring.tasks",
    "plan_tasks": "scoring.tasks",
}

__all__ = [
    "EXTRA_SCORE_COLUMNS",
    "LEFT_OUT_COLUMNS",
    "SKIP_REASONS",
    "TASK_COLUMNS",
    "ScoringConfig",
    "TaskPlan",
    "load_config",
    "load_locale",
    "plan_tasks",
    "score_contacts",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scoring' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
