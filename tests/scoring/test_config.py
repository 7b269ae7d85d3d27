"""load_config: packaged defaults, user overrides, and errors that name the bad key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scoring import ScoringConfig, load_config


def test_defaults_load():
    cfg = load_config(None)
    assert isinstance(cfg, ScoringConfig)
    assert (cfg.temperature.hot, cfg.temperature.warm) == (70, 35)
    assert cfg.touches.cadence_days == {"hot": 2, "warm": 14, "cold": 30}
    assert cfg.tasks.daily_cap == 20
    assert cfg.half_life_days["intent"] == 3


def test_user_yaml_merges_over_defaults(tmp_path: Path):
    path = tmp_path / "scoring.yaml"
    path.write_text(
        "temperature:\n  hot: 80\ntasks:\n  daily_cap: 5\n  cooldown_days: {touch: 7}\n",
        encoding="utf-8",
    )
    cfg = load_config(path)
    assert cfg.temperature.hot == 80
    assert cfg.temperature.warm == 35  # untouched sibling kept
    assert cfg.tasks.daily_cap == 5
    assert cfg.tasks.cooldown_days == {"touch": 7, "review": 90}


def test_mapping_override_and_list_replacement():
    cfg = load_config({"intent_words": {"en": ["now"]}})
    assert cfg.intent_words["en"] == ["now"]
    assert "срочн" in cfg.intent_words["ru"]


def test_empty_user_file_is_defaults(tmp_path: Path):
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert load_config(path) == load_config(None)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"temperature": {"hot": "very"}}, r"temperature\.hot"),
        ({"temperature": {"hot": 150}}, r"temperature\.hot"),
        ({"temperature": {"hot": 30}}, r"warm .* must be below hot"),
        ({"temperatur": {"hot": 70}}, r"temperatur.*not permitted"),
        ({"tasks": {"daily_capp": 3}}, r"tasks\.daily_capp"),
        ({"tasks": {"daily_cap": -1}}, r"tasks\.daily_cap"),
        ({"half_life_days": {"intent": 0}}, r"half_life_days\.intent"),
        ({"touches": {"cadence_days": {"lukewarm": 5}}}, r"touches\.cadence_days\.lukewarm"),
        ({"segments": {"fan_types": ["tweet"]}}, r"segments\.fan_types.*tweet"),
        (
            {"signals": [{"code": "x", "types": ["call"], "points": 1, "signal_class": "nope"}]},
            r"signals\.0\.signal_class",
        ),
        ({"signals": [{"code": "x", "types": ["call"], "points": 1}]}, r"signals\.0\.signal_class"),
        ({"tasks": {"urgency_order": ["touch"]}}, r"urgency_order"),
        ({"tasks": {"rule_order": ["touch"]}}, r"tasks\.rule_order.*not permitted"),
        ({"tasks": {"touch_priority": {"hot": "URGENT"}}}, r"tasks\.touch_priority\.hot"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(override)


@pytest.mark.parametrize(
    ("text", "message"),
    [("temperature: [1, 2\n", "invalid YAML"), ("- a\n- b\n", "must be a mapping")],
)
def test_bad_yaml(tmp_path: Path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_config(path)


def test_config_is_frozen():
    cfg = load_config(None)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its own ValidationError
        cfg.temperature.hot = 1  # type: ignore[misc]


def test_scoring_imports_without_dagster():
    code = (
        "import sys; import scoring; from scoring import ScoringConfig, plan_tasks; "
        "assert not any(m == 'dagster' or m.startswith('dagster.') for m in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
