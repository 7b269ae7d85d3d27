"""The portals file: validated with every problem named, credentials only by variable name, each
portal's own settings, and the Dagster resources built from it (secrets only as EnvVar)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from connectors.base import PortalInfo
from pipelines.config import HeatsyncConfig, MissingCredentials
from pipelines.crms import CRMS
from pipelines.portals import (
    DEFAULT_PORTAL,
    Portal,
    PortalsFileError,
    configured_portals,
    load_portals_file,
    portals_file,
    portals_named,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "portals.example.yaml"


def _write(tmp_path: Path, portals: list[dict[str, Any]]) -> Path:
    path = tmp_path / "portals.yaml"
    path.write_text(yaml.safe_dump({"portals": portals}, sort_keys=False))
    return path


HUBSPOT = {"name": "acme", "crm": "hubspot", "credentials": {"access_token": "ACME_TOKEN"}}
AMOCRM = {
    "name": "baltic",
    "crm": "amocrm",
    "base_url": "https://baltic.amocrm.ru",
    "credentials": {"access_token": "BALTIC_TOKEN"},
}


def test_the_shipped_example_is_a_valid_portals_file(tmp_path: Path) -> None:
    copy = tmp_path / "portals.yaml"
    shutil.copyfile(EXAMPLE, copy)
    (tmp_path / "scoring").mkdir()
    (tmp_path / "scoring" / "baltic.yaml").write_text("tasks:\n  daily_cap: 12\n")
    entries = {e.name: e for e in load_portals_file(copy)}
    assert set(entries) == {"acme", "baltic"}
    assert entries["baltic"].crm == "amocrm" and entries["baltic"].locale == "lv"
    # a relative scoring config is the file's neighbour, resolved once
    assert entries["baltic"].scoring_config == str((tmp_path / "scoring" / "baltic.yaml").resolve())
    assert entries["acme"].options == {"HUBSPOT_BURST_LIMIT": 100}
    assert entries["baltic"].field_policy["reasons"] == "never_write"
    own = Portal("baltic", CRMS["amocrm"], entries["baltic"]).config(
        HeatsyncConfig(field_policy={"score": "never_write"})
    )
    assert own.human_edit_days == 14
    assert own.field_policy == {
        "score": "never_write",
        "temperature": "respect_human_edits",
        "reasons": "never_write",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Acme Corp"}, r"portals\[0\] \(Acme Corp\)\.name: a portal name is lowercase"),
        ({"crm": "pipedrive"}, r"\(acme\)\.crm: 'pipedrive' is not a CRM heatsync knows"),
        (
            {"credentials": {"access_token": "pat-na1-0123-4567"}},
            r"credentials\.access_token: give the name of the environment variable",
        ),
        ({"credentials": {"password": "X"}}, r"credentials\.password: hubspot takes access_token"),
        ({"credentials": {}}, r"credentials: name the environment variables"),
        ({"time_zone": "Riga"}, r"time_zone: 'Riga' is not an IANA time zone"),
        ({"locale": "de"}, r"locale: 'de' is not a language heatsync speaks: en, lv, ru"),
        ({"daily_task_cap": -1}, r"daily_task_cap: Input should be greater than or equal to 0"),
        ({"redirect_uri": "https://x"}, r"redirect_uri: hubspot has none"),
        ({"options": {"AMOCRM_TOKEN_DIR": "/x"}}, r"options \['AMOCRM_TOKEN_DIR'\]: hubspot reads"),
        ({"token": "oops"}, r"\(acme\)\.token: Extra inputs are not permitted"),
        ({"field_policy": {"mood": "overwrite"}}, r"field_policy: \['mood'\]: heatsync's fields"),
        ({"field_policy": {"score": "sometimes"}}, r"field_policy\.score: Input should be"),
    ],
)
def test_a_bad_entry_is_named_with_its_field_and_reason(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = _write(tmp_path, [{**HUBSPOT, **change}])
    with pytest.raises(PortalsFileError, match=message) as raised:
        load_portals_file(path)
    assert str(path) in str(raised.value)
    # a secret pasted where a variable name belongs never reaches the message
    assert "pat-na1" not in str(raised.value)


def test_every_problem_of_a_file_is_listed_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, [{**HUBSPOT, "locale": "de"}, {**AMOCRM, "time_zone": "Nowhere/X"}])
    with pytest.raises(PortalsFileError) as raised:
        load_portals_file(path)
    assert "portals[0] (acme).locale" in str(raised.value)
    assert "portals[1] (baltic).time_zone" in str(raised.value)


def test_names_are_unique_and_the_file_is_yaml_with_portals(tmp_path: Path) -> None:
    with pytest.raises(PortalsFileError, match="unique: acme twice"):
        load_portals_file(_write(tmp_path, [HUBSPOT, {**AMOCRM, "name": "acme"}]))
    with pytest.raises(PortalsFileError, match="portals: List should have at least 1 item"):
        load_portals_file(_write(tmp_path, []))
    bad = tmp_path / "bad.yaml"
    bad.write_text("portals: [unclosed\n")
    with pytest.raises(PortalsFileError, match="not YAML"):
        load_portals_file(bad)
    missing_config = _write(tmp_path, [{**HUBSPOT, "scoring_config": "nope.yaml"}])
    with pytest.raises(PortalsFileError, match=r"portal acme: scoring_config .*nope\.yaml"):
        load_portals_file(missing_config)


def test_which_file_is_used(tmp_path: Path) -> None:
    path = _write(tmp_path, [HUBSPOT])
    assert portals_file({"HEATSYNC_PORTALS": str(path)}) == path.resolve()
    with pytest.raises(PortalsFileError, match=r"HEATSYNC_PORTALS=.*no such file"):
        portals_file({"HEATSYNC_PORTALS": str(tmp_path / "missing.yaml")})
    # without the variable: portals.yaml beside workspace.yaml when there is one (none here)
    assert (ROOT / "portals.yaml").exists() == (portals_file({}) is not None)


def test_without_a_file_the_environment_configures_one_portal_under_any_name() -> None:
    env = {"AMOCRM_BASE_URL": "https://x.amocrm.ru", "AMOCRM_ACCESS_TOKEN": "placeholder"}
    (portal,) = configured_portals(env)
    assert (portal.name, portal.crm.name, portal.entry) == (DEFAULT_PORTAL, "amocrm", None)
    assert portal.environment(env) == env
    (named,) = portals_named("second", env)
    assert named.name == "second" and named.crm.name == "amocrm"
    # the reps read the CRM's language unless HEATSYNC_LOCALE says
    assert portal.config(HeatsyncConfig()).locale == "ru"
    assert portal.config(HeatsyncConfig(locale="lv")).locale == "lv"


def test_a_file_portal_reads_its_own_variables_and_settings(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {**HUBSPOT, "base_url": "http://127.0.0.1:1", "options": {"HUBSPOT_BURST_LIMIT": 50}},
            {**AMOCRM, "locale": "lv", "time_zone": "Europe/Riga", "daily_task_cap": 3},
        ],
    )
    env = {"HEATSYNC_PORTALS": str(path), "ACME_TOKEN": "placeholder-acme"}
    acme, baltic = configured_portals(env)
    assert acme.environment(env) == {
        "HUBSPOT_ACCESS_TOKEN": "placeholder-acme",
        "HUBSPOT_BASE_URL": "http://127.0.0.1:1",
        "HUBSPOT_BURST_LIMIT": "50",
    }
    connector: Any = acme.connector(env, acme.config(HeatsyncConfig(home=str(tmp_path))))
    assert connector.settings.burst_limit == 50
    base = HeatsyncConfig(home=str(tmp_path), locale="en")
    own = baltic.config(base)
    assert (own.locale, own.time_zone, own.daily_task_cap) == ("lv", "Europe/Riga", 3)
    assert own.capped(own.scoring()).tasks.daily_cap == 3
    assert acme.config(base).daily_task_cap is None
    # the variable the file names is not set: the portal says which, and nothing else is read
    with pytest.raises(MissingCredentials, match="portal baltic: BALTIC_TOKEN not set"):
        baltic.connector(env, own)
    with pytest.raises(PortalsFileError, match=r"no portal 'nope' in .*: acme, baltic"):
        portals_named("nope", env)


def test_a_portals_own_time_zone_is_its_calendar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(
        tmp_path, [{**HUBSPOT, "base_url": "http://127.0.0.1:1", "time_zone": "Asia/Tokyo"}]
    )
    env = {"HEATSYNC_PORTALS": str(path), "ACME_TOKEN": "placeholder"}
    (acme,) = configured_portals(env)
    connector = acme.connector(env, acme.config(HeatsyncConfig(home=str(tmp_path))))
    account = PortalInfo(portal_id="42", time_zone="Europe/Riga", currency="EUR")
    inner: Any = connector.settings  # the wrapped connector's own attributes are reachable
    assert inner.access_token.get_secret_value() == "placeholder"
    monkeypatch.setattr(type(connector._inner), "portal_info", lambda self: account)  # type: ignore[attr-defined]
    assert connector.portal_info() == PortalInfo("42", "Asia/Tokyo", "EUR")
    # without the setting the account's zone is the calendar
    (plain,) = configured_portals({**env, "HEATSYNC_PORTALS": str(_write(tmp_path, [HUBSPOT]))})
    assert plain.connector(env, plain.config(HeatsyncConfig())).portal_info() == account


def test_definitions_from_a_portals_file_reference_secrets_only_as_env_vars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.definitions import build_defs

    path = _write(tmp_path, [HUBSPOT, {**AMOCRM, "locale": "lv", "daily_task_cap": 4}])
    env = {
        "HEATSYNC_PORTALS": str(path),
        "HEATSYNC_HOME": str(tmp_path / "home"),
        "ACME_TOKEN": "placeholder-acme-secret",
        "BALTIC_TOKEN": "placeholder-baltic-secret",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    defs = build_defs(env)
    shown = repr(defs.resources)
    assert "placeholder-acme-secret" not in shown and "placeholder-baltic-secret" not in shown
    extract = defs.get_repository_def().asset_graph.get(dg.AssetKey(["crm", "extract"]))
    assert extract.kinds == {"hubspot", "amocrm", "parquet"}
    with dg.build_resources(dict(defs.resources or {})) as resources:
        assert resources.crm.names() == ["acme", "baltic"]
        acme: Any = resources.crm.connector("acme", resources.heatsync.values("acme"))
        baltic: Any = resources.crm.connector("baltic", resources.heatsync.values("baltic"))
        assert type(acme).__name__ == "HubSpotConnector"
        assert type(baltic).__name__ == "AmoCrmConnector"
        assert baltic.settings.base_url == AMOCRM["base_url"]
        assert baltic.settings.access_token.get_secret_value() == "placeholder-baltic-secret"
        assert baltic.settings.token_dir == (tmp_path / "home").resolve() / "tokens"
        assert resources.heatsync.values("acme").locale == "en"
        assert resources.heatsync.values("baltic").locale == "lv"
        assert resources.heatsync.values("baltic").daily_task_cap == 4
        with pytest.raises(dg.Failure, match="not in the portals file"):
            resources.crm.connector("other")


def test_a_portal_whose_variables_are_unset_loads_and_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.definitions import build_defs

    path = _write(tmp_path, [HUBSPOT, AMOCRM])
    env = {"HEATSYNC_PORTALS": str(path), "ACME_TOKEN": "placeholder"}
    monkeypatch.setenv("ACME_TOKEN", "placeholder")
    monkeypatch.delenv("BALTIC_TOKEN", raising=False)
    defs = build_defs(env)
    with dg.build_resources(dict(defs.resources or {})) as resources:
        assert type(resources.crm.connector("acme")).__name__ == "HubSpotConnector"
        with pytest.raises(dg.Failure, match="portal baltic: BALTIC_TOKEN not set"):
            resources.crm.connector("baltic")
