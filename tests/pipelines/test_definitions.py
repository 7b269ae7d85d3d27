"""The code location loads with what it promises the UI: assets, checks, jobs, schedules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_YAML = ROOT / "pipelines" / "dagster.yaml"


@pytest.fixture
def defs(monkeypatch: pytest.MonkeyPatch) -> dg.Definitions:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "placeholder-token")
    from pipelines.definitions import build_defs

    return build_defs()


def test_definitions_load_with_assets_checks_job_schedule(defs: dg.Definitions) -> None:
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    keys = {"/".join(k.path) for k in repo.asset_graph.get_all_asset_keys()}
    assert keys == {
        "crm/extract",
        "heatsync/scores",
        "crm/field_writeback",
        "crm/tasks",
        "heatsync/backtest",
        "heatsync/calibration",
    }
    checks = {c.name for c in repo.asset_graph.asset_check_keys}
    assert {
        "every_contact_scored",
        "scores_in_range",
        "all_fields_written",
        "no_duplicate_tasks",
        "all_tasks_created",
        "hot_converts_best",
    } == checks
    job = defs.resolve_job_def("daily_scoring")
    assert job.partitions_def is not None
    assert defs.resolve_schedule_def("daily_scoring_schedule").job_name == "daily_scoring"
    # the recalibration is a job and schedule of its own, never a step of the daily run
    assert "heatsync__calibration" not in job.graph.node_dict
    weekly = defs.resolve_schedule_def("weekly_calibration_schedule")
    assert weekly.job_name == "weekly_calibration"
    assert list(defs.resolve_job_def("weekly_calibration").graph.node_dict) == [
        "heatsync__calibration"
    ]


def test_secrets_reach_the_resource_only_as_env_vars(defs: dg.Definitions) -> None:
    resource = defs.resources["crm"]
    # The token is an unresolved EnvVar in the definitions, never the literal value.
    assert "placeholder-token" not in repr(resource)


def test_every_env_var_in_code_is_documented_in_env_example() -> None:
    example = (ROOT / ".env.example").read_text()
    from pipelines.crms import CRMS

    names = set()
    for path in ROOT.glob("pipelines/**/*.py"):
        names |= set(re.findall(r'"((?:HEATSYNC|DAGSTER)_[A-Z_]+)"', path.read_text()))
    names -= {"HEATSYNC_VARIABLES"}
    for crm in CRMS.values():  # every variable a registered CRM reads
        names |= {*crm.variables.values(), *crm.options}
    missing = sorted(n for n in names if f"{n}=" not in example)
    assert not missing, f"not in .env.example: {missing}"


def test_the_dagster_loader_and_the_cli_read_one_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Environment → settings happens at load time through pipelines.config, for both."""
    from connectors.hubspot.env import settings_from_env as hubspot_settings
    from connectors.hubspot.settings import DEFAULT_BASE_URL, DEFAULT_BURST_LIMIT
    from pipelines.definitions import build_defs

    env = {"HUBSPOT_ACCESS_TOKEN": "placeholder-token", "HEATSYNC_LOCALE": "lv"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HUBSPOT_BASE_URL", raising=False)
    monkeypatch.delenv("HUBSPOT_BURST_LIMIT", raising=False)

    def launched(defs: dg.Definitions) -> Any:
        """The resources as a run sees them (EnvVar resolved)."""
        with dg.build_resources(dict(defs.resources or {})) as resources:
            return resources

    resources = launched(build_defs(env))
    assert resources.heatsync.locale == "lv"
    settings = resources.crm.connector("default").settings
    assert settings == hubspot_settings("default", env)
    assert (settings.base_url, settings.burst_limit) == (DEFAULT_BASE_URL, DEFAULT_BURST_LIMIT)
    # the same variables, changed after import, are seen by the next build: nothing is cached
    monkeypatch.setenv("HEATSYNC_LOCALE", "ru")
    monkeypatch.setenv("HUBSPOT_BURST_LIMIT", "90")
    resources = launched(build_defs())
    assert resources.heatsync.locale == "ru"
    assert resources.crm.connector("default").settings.burst_limit == 90


def test_oauth_settings_are_flat_fields_and_all_three_are_needed() -> None:
    from connectors.hubspot.env import settings_from_env as hubspot_settings
    from pipelines.config import MissingCredentials

    oauth = {
        "HUBSPOT_CLIENT_ID": "app",
        "HUBSPOT_CLIENT_SECRET": "placeholder-secret",
        "HUBSPOT_REFRESH_TOKEN": "placeholder-refresh",
        "HUBSPOT_ACCESS_TOKEN": "",  # empty counts as unset
    }
    settings = hubspot_settings("p", oauth)
    assert settings.access_token is None and settings.oauth is not None
    assert settings.oauth.client_id == "app"
    with pytest.raises(MissingCredentials):
        hubspot_settings("p", {"HUBSPOT_BASE_URL": "http://localhost"})
    with pytest.raises(ValueError, match="client_secret"):
        hubspot_settings("p", {**oauth, "HUBSPOT_CLIENT_SECRET": ""})


def test_no_dagster_import_in_connectors_or_scoring() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for package in ("connectors", "scoring")
        for p in (ROOT / package).rglob("*.py")
        if re.search(r"^\s*(import dagster|from dagster)", p.read_text(), re.M)
    ]
    assert not offenders


def test_the_run_layer_and_the_configuration_import_no_dagster() -> None:
    """The Dagster definitions are a shell: everything a run does is importable without it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import pipelines.run.day, pipelines.run.asof, pipelines.steps, pipelines.store, "
        "pipelines.config, pipelines.files\n"
        "assert 'dagster' not in sys.modules, 'dagster was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_shipped_dagster_yaml_keeps_one_run_per_portal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.cli import ensure_dagster_home

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert ensure_dagster_home() == tmp_path.resolve()
    assert (tmp_path / "dagster.yaml").read_text() == SHIPPED_YAML.read_text()
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None
    per_portal = [
        limit
        for limit in queue.tag_concurrency_limits
        if limit["key"] == "dagster/partition/portal"
    ]
    assert per_portal == [
        {"key": "dagster/partition/portal", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"


def test_no_instance_config_in_the_project_root() -> None:
    # `dagster dev` (make ui runs it from the root) warns about a dagster.yaml in its working
    # folder that is not DAGSTER_HOME's.
    assert not (ROOT / "dagster.yaml").exists() and not (ROOT / "dagster.yml").exists()
    assert SHIPPED_YAML.is_file()


AMO_ENV = {
    "AMOCRM_BASE_URL": "https://example.amocrm.ru",
    "AMOCRM_CLIENT_ID": "app",
    "AMOCRM_CLIENT_SECRET": "placeholder-secret",
    "AMOCRM_REDIRECT_URI": "https://heatsync.example/callback",
    "AMOCRM_REFRESH_TOKEN": "placeholder-refresh",
}


def test_the_configured_crm_is_heatsync_crm_else_the_one_with_credentials(tmp_path: Path) -> None:
    from pipelines.config import MissingCredentials
    from pipelines.crms import CRMS, NoCrmConfigured, chosen_crm

    hubspot = {"HUBSPOT_ACCESS_TOKEN": "placeholder-token"}
    assert chosen_crm(hubspot).name == "hubspot"
    assert chosen_crm(AMO_ENV).name == "amocrm"
    assert chosen_crm({**hubspot, **AMO_ENV}).name == "hubspot"  # both: HubSpot first
    assert chosen_crm({**hubspot, **AMO_ENV, "HEATSYNC_CRM": "amocrm"}).name == "amocrm"
    assert chosen_crm({"HEATSYNC_CRM": "AmoCRM"}).name == "amocrm"
    with pytest.raises(NoCrmConfigured, match=r"HUBSPOT_ACCESS_TOKEN.*AMOCRM_REFRESH_TOKEN"):
        chosen_crm({"HUBSPOT_BASE_URL": "http://localhost", "AMOCRM_BASE_URL": "https://x.ru"})
    with pytest.raises(NoCrmConfigured, match="pipedrive"):
        chosen_crm({**hubspot, "HEATSYNC_CRM": "pipedrive"})
    assert (CRMS["hubspot"].locale, CRMS["amocrm"].locale) == ("en", "ru")

    # amoCRM's token store lives under heatsync's state directory unless AMOCRM_TOKEN_DIR says
    connector: Any = CRMS["amocrm"].connector("default", AMO_ENV, tmp_path)
    assert connector.settings.token_dir == tmp_path / "tokens"
    elsewhere = tmp_path / "elsewhere"
    env = {**AMO_ENV, "AMOCRM_TOKEN_DIR": str(elsewhere)}
    assert CRMS["amocrm"].connector("default", env, tmp_path).settings.token_dir == elsewhere
    with pytest.raises(MissingCredentials, match="AMOCRM_BASE_URL"):
        CRMS["amocrm"].connector("default", {"AMOCRM_ACCESS_TOKEN": "placeholder"}, tmp_path)


def test_an_amocrm_environment_builds_an_amocrm_code_location(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pipelines.definitions import build_defs

    for name in ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_REFRESH_TOKEN", "HEATSYNC_CRM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**AMO_ENV, "HEATSYNC_HOME": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    defs = build_defs()
    assert "placeholder-refresh" not in repr(defs.resources["crm"])
    extract = defs.get_repository_def().asset_graph.get(dg.AssetKey(["crm", "extract"]))
    assert extract.kinds == {"amocrm", "parquet"}
    assert extract.assets_def.node_def.pool == "crm_api"
    with dg.build_resources(dict(defs.resources or {})) as resources:
        connector = resources.crm.connector("default", resources.heatsync.values())
    assert type(connector).__name__ == "AmoCrmConnector"
    assert connector.settings.redirect_uri == AMO_ENV["AMOCRM_REDIRECT_URI"]
    assert connector.settings.token_dir == tmp_path.resolve() / "tokens"
