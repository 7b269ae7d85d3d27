"""Scoring configuration: pydantic models over every weight, half-life, threshold and cadence.

`load_config(None)` returns the packaged defaults (scoring/defaults.yaml, which documents each
value). `load_config(path_or_mapping)` deep-merges a user YAML (or dict) over the defaults: mappings
merge key by key, lists and scalars replace. Any problem (invalid YAML, an unknown key, a bad value)
raises ValueError naming the offending key, e.g. ``temperature.hot: Input should be ...``.
This module does not import dagster.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scoring import contract

DEFAULTS_PATH = Path(__file__).with_name("defaults.yaml")

TaskType = Literal["CALL", "EMAIL", "TODO"]
Priority = Literal["HIGH", "MEDIUM", "LOW"]
RULES = ("call_now", "at_risk", "birthday", "review", "touch")
# what the daily cap orders by: the rules, with a burning contact's call_now a class of its own
URGENCY_CLASSES = ("burning", *RULES)
UrgencyClass = Literal["burning", "call_now", "at_risk", "birthday", "review", "touch"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TemperatureConfig(_Model):
    hot: float = Field(ge=0, le=100)
    warm: float = Field(ge=0, le=100)
    saturation_points: float = Field(gt=0)
    trend_band: float = Field(ge=0)
    # points every contact starts from (a calibrated config sets it so that negative evidence
    # still ranks contacts instead of flooring them all at 0)
    base_points: float = 0.0

    @model_validator(mode="after")
    def _ordered(self) -> TemperatureConfig:
        if self.warm >= self.hot:
            raise ValueError(f"warm ({self.warm}) must be below hot ({self.hot})")
        return self


class SignalRule(_Model):
    """One activity pattern and the points it is worth. The first matching rule wins.

    `directions`/`outcomes` None matches anything; the word "unknown" in the list matches a null.
    """

    code: str = Field(min_length=1)
    types: list[str] = Field(min_length=1)
    directions: list[str] | None = None
    outcomes: list[str] | None = None
    intent: bool | None = None
    points: float
    signal_class: str
    cap: float | None = Field(default=None, gt=0)
    # engagement depth: points per minute of `duration_s` (time on site, call length), each
    # activity's minutes bounded by max_minutes, decaying with the activity
    points_per_minute: float = 0.0
    max_minutes: float = Field(default=60.0, gt=0)


class UnansweredPenalty(_Model):
    min_calls: int = Field(ge=1)
    window_days: int = Field(ge=1)
    outcomes: list[str]
    points: float = Field(le=0)
    code: str


class RollupConfig(_Model):
    count_bonus: float = Field(ge=0)


class DealsConfig(_Model):
    late_stage_probability: float = Field(ge=0, le=1)
    late_stage_points: float = Field(ge=0)
    open_points_per_probability: float = Field(ge=0)
    open_unknown_probability_points: float = Field(ge=0)
    open_signal_class: str
    won_recent_points: float = Field(ge=0)
    won_signal_class: str


class CustomersConfig(_Model):
    """Purchase propensity of contacts with won deals (see scoring/temperature.py)."""

    prior_repeats: float = Field(gt=0)
    prior_days: float = Field(gt=0)
    stay_probability: float = Field(gt=0, lt=1)
    horizon_days: float = Field(gt=0)
    points: float = Field(ge=0)
    value_reference: float | None = Field(default=None, gt=0)
    value_exponent: float = Field(ge=0)
    value_factor_max: float = Field(ge=1)
    code: str = Field(min_length=1)


class ProfileConfig(_Model):
    """Who the contact is, not what they did: points by source and lifecycle stage, VIP and
    do-not-contact (no decay), and the recency of their last inbound activity."""

    source: dict[str, float] = Field(default_factory=dict)
    lifecycle_stage: dict[str, float] = Field(default_factory=dict)
    vip: float = 0.0
    do_not_contact: float = 0.0
    customer: float = 0.0  # a contact with a won deal (shown as purchased_recently)
    last_inbound_points: float = 0.0
    last_inbound_class: str = "engagement"
    # our touches (touches.types etc.) in the last touches.window_days days, points per touch
    touch_points: float = 0.0


class SegmentsConfig(_Model):
    difficult_issue_types: list[str]
    difficult_min_issues: int = Field(ge=1)
    difficult_window_days: int = Field(ge=1)
    at_risk_min_won: int = Field(ge=2)
    at_risk_factor: float = Field(gt=0)
    at_risk_recent_purchase_days: int = Field(ge=0)
    key_window_days: int = Field(ge=1)
    key_min_won: int = Field(ge=1)
    key_top_quantile: float = Field(gt=0, lt=1)
    key_top_min_won: int = Field(ge=1)
    burning_max_age_days: int = Field(ge=0)
    burning_intent_days: int = Field(ge=0)
    fan_types: list[str]
    fan_min_events: int = Field(ge=1)
    fan_max_won: int = Field(ge=0)
    fan_window_days: int = Field(ge=1)
    loyal_types: list[str]
    loyal_min_events: int = Field(ge=1)
    loyal_window_days: int = Field(ge=1)
    new_days: int = Field(ge=0)


class TouchesConfig(_Model):
    types: list[str]
    call_inbound_outcomes: list[str]
    meeting_outcomes: list[str]
    window_days: int = Field(ge=1)
    cadence_days: dict[Literal["hot", "warm", "cold"], int]

    @model_validator(mode="after")
    def _all_temperatures(self) -> TouchesConfig:
        missing = set(contract.TEMPERATURES) - set(self.cadence_days)
        if missing:
            raise ValueError(f"cadence_days is missing {sorted(missing)}")
        return self


class ReasonsConfig(_Model):
    top_n: int = Field(ge=1)
    min_strength: float = Field(ge=0)
    count_window_days: int = Field(ge=1)
    no_recent_activity_days: int = Field(ge=1)
    no_recent_activity_strength: float = Field(ge=0)
    overdue_vs_rhythm_strength: float = Field(ge=0)
    problems_reported_strength: float = Field(ge=0)
    frequent_buyer_strength: float = Field(ge=0)
    fan_activity_strength: float = Field(ge=0)
    chance_medium: float = Field(ge=0, le=100)
    chance_high: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _chance_levels(self) -> ReasonsConfig:
        if self.chance_medium > self.chance_high:
            raise ValueError(
                f"chance_medium ({self.chance_medium}) must not be above chance_high "
                f"({self.chance_high})"
            )
        return self


class TasksConfig(_Model):
    daily_cap: int = Field(ge=0)
    urgency_order: list[UrgencyClass]
    cap_burning: bool
    cooldown_days: dict[Literal["touch", "review"], int]
    burning_due_minutes: int = Field(ge=0)
    same_day_due_hours: float = Field(ge=0)
    birthday_window_days: int = Field(ge=0)
    birthday_due_hour: int = Field(ge=0, le=23)
    touch_priority: dict[Literal["hot", "warm", "cold"], Priority]
    touch_channels: dict[str, TaskType]

    @model_validator(mode="after")
    def _complete(self) -> TasksConfig:
        if sorted(self.urgency_order) != sorted(URGENCY_CLASSES):
            raise ValueError(f"urgency_order must list each of {list(URGENCY_CLASSES)} once")
        missing = {
            "personal_call",
            "early_access",
            "retention",
            "opinion",
            "content_offer",
            "soft_retouch",
            "their_problem",
            "congratulate",
        } - set(self.touch_channels)
        if missing:
            raise ValueError(f"touch_channels is missing {sorted(missing)}")
        return self


class ScoringConfig(_Model):
    """Every knob of the scoring model; see scoring/defaults.yaml for meanings and defaults."""

    temperature: TemperatureConfig
    half_life_days: dict[str, float]
    intent_types: list[str]
    intent_words: dict[str, list[str]]
    signals: list[SignalRule] = Field(min_length=1)
    unanswered_penalty: UnansweredPenalty
    rollup: RollupConfig
    deals: DealsConfig
    customers: CustomersConfig
    profile: ProfileConfig = Field(default_factory=ProfileConfig)
    segments: SegmentsConfig
    touches: TouchesConfig
    reasons: ReasonsConfig
    tasks: TasksConfig

    @model_validator(mode="after")
    def _cross_checks(self) -> ScoringConfig:
        for name, value in self.half_life_days.items():
            if value <= 0:
                raise ValueError(f"half_life_days.{name} must be > 0")
        classes = set(self.half_life_days)
        for i, rule in enumerate(self.signals):
            if rule.signal_class not in classes:
                raise ValueError(
                    f"signals.{i}.signal_class: {rule.signal_class!r} is not in half_life_days"
                )
        for key in ("open_signal_class", "won_signal_class"):
            if getattr(self.deals, key) not in classes:
                raise ValueError(f"deals.{key}: not in half_life_days")
        if self.profile.last_inbound_class not in classes:
            raise ValueError("profile.last_inbound_class: not in half_life_days")
        known = set(contract.ACTIVITY_TYPES)
        lists = [("intent_types", self.intent_types)]
        lists += [(f"signals.{i}.types", r.types) for i, r in enumerate(self.signals)]
        lists += [("touches.types", self.touches.types)]
        lists += [
            (f"segments.{k}", getattr(self.segments, k))
            for k in ("difficult_issue_types", "fan_types", "loyal_types")
        ]
        for where, types in lists:
            unknown = sorted(set(types) - known)
            if unknown:
                raise ValueError(f"{where}: unknown activity types {unknown}")
        if not any(self.intent_words.values()):
            raise ValueError("intent_words: at least one word is required")
        return self


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"invalid YAML in {path}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def _format_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        lines.append(f"{loc}: {err['msg']}")
    return "invalid scoring config: " + "; ".join(lines)


def load_config(source: str | Path | Mapping[str, Any] | None = None) -> ScoringConfig:
    """Load the packaged defaults, merged with `source` (a YAML path or a mapping) if given."""
    data = _read_yaml(DEFAULTS_PATH)
    if source is not None:
        override = source if isinstance(source, Mapping) else _read_yaml(Path(source))
        data = _deep_merge(data, override)
    try:
        return ScoringConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_format_error(exc)) from None
