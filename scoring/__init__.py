"""heatsync scoring: customer temperature, segments, touches and task plans from canonical tables.

Pure pandas, no I/O except the packaged YAML defaults and locales; never imports dagster.
"""

from scoring.config import ScoringConfig, load_config
from scoring.explain import load_locale
from scoring.score import EXTRA_SCORE_COLUMNS, score_contacts

__all__ = [
    "EXTRA_SCORE_COLUMNS",
    "ScoringConfig",
    "load_config",
    "load_locale",
    "score_contacts",
]
