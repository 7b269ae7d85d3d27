"""heatsync scoring: customer temperature, segments, touches and task plans from canonical tables.

Pure pandas, no I/O except the packaged YAML defaults and locales; never imports dagster.
"""

from scoring.config import ScoringConfig, load_config
from scoring.explain import load_locale
from scoring.score import EXTRA_SCORE_COLUMNS, score_contacts
from scoring.tasks import LEFT_OUT_COLUMNS, SKIP_REASONS, TASK_COLUMNS, TaskPlan, plan_tasks

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
