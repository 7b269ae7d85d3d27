"""The property schema heatsync owns in HubSpot: its definitions, the check, the idempotent ensure.

`ensure_schema` GETs each group/property first; creates on 404 (a 409 means it exists) with the
locale's label and description; PATCHes only the labels, descriptions and options that differ from
the locale's (one request per property). A second run sends no write. Re-exported by
`connectors.hubspot.writeback`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from connectors.base import CheckItem
from connectors.http import ConflictError, log
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.labels import description, label
from connectors.hubspot.models import PropertyDefinition
from connectors.hubspot.settings import (
    CONTACTS,
    DEFAULT_VIP_PROPERTY,
    FIELD_PROPERTIES,
    GROUP_NAME,
    TASK_KEY_PROPERTY,
    TASKS,
    UPDATED_AT_PROPERTY,
)
from scoring import contract

# --------------------------------------------------------------------------------------------
# Schema


def property_specs(locale: str, vip_property: str) -> list[tuple[str, dict[str, Any]]]:
    """(object type, property create body) for every property heatsync owns."""

    def options(kind: str, codes: Iterable[str]) -> list[dict[str, Any]]:
        return [
            {
                "label": label(locale, f"{kind}.{code}"),
                "value": code,
                "displayOrder": i,
                "hidden": False,
            }
            for i, code in enumerate(codes)
        ]

    def prop(name: str, type_: str, field_type: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "label": label(locale, name),
            "description": description(locale, name),
            "type": type_,
            "fieldType": field_type,
            "groupName": GROUP_NAME,
            **extra,
        }

    f = FIELD_PROPERTIES
    specs: list[tuple[str, dict[str, Any]]] = [
        (
            CONTACTS,
            prop(
                f["temperature"],
                "enumeration",
                "select",
                options=options("temperature", contract.TEMPERATURES),
            ),
        ),
        (CONTACTS, prop(f["score"], "number", "number")),
        (
            CONTACTS,
            prop(
                f["segment"], "enumeration", "select", options=options("segment", contract.SEGMENTS)
            ),
        ),
        (CONTACTS, prop(f["reasons"], "string", "textarea")),
        (
            CONTACTS,
            prop(f["trend"], "enumeration", "select", options=options("trend", contract.TRENDS)),
        ),
        (CONTACTS, prop(UPDATED_AT_PROPERTY, "date", "date")),
        (CONTACTS, prop(f["next_touch_due"], "date", "date")),
        (CONTACTS, prop(f["touches_30d"], "number", "number")),
    ]
    if vip_property == DEFAULT_VIP_PROPERTY:
        # A portal that keeps its own VIP flag (settings.vip_property) owns that property.
        vip = prop(vip_property, "bool", "booleancheckbox")
        vip["label"] = label(locale, "heatsync_vip")
        vip["options"] = [
            {"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
            {"label": "No", "value": "false", "displayOrder": 1, "hidden": False},
        ]
        specs.append((CONTACTS, vip))
    specs.append((TASKS, prop(TASK_KEY_PROPERTY, "string", "text")))
    return specs


def _drift(current: PropertyDefinition, wanted: dict[str, Any]) -> dict[str, Any]:
    """The PATCH body needed to bring `current` to `wanted` (empty when nothing drifted)."""
    patch: dict[str, Any] = {}
    if current.label != wanted["label"]:
        patch["label"] = wanted["label"]
    if (current.description or "") != wanted.get("description", ""):
        patch["description"] = wanted.get("description", "")
    if wanted["type"] == "enumeration":
        have = {o.value: o.label for o in current.options if not o.hidden}
        want = {o["value"]: o["label"] for o in wanted.get("options", [])}
        if have != want:
            patch["options"] = wanted["options"]
    return patch


def _check_property(
    object_type: str, current: PropertyDefinition | None, wanted: dict[str, Any], locale: str
) -> CheckItem:
    name = f"field {wanted['name']}" + ("" if object_type == CONTACTS else f" ({object_type})")
    want = f"{wanted['type']}/{wanted['fieldType']}"
    if current is None:
        return CheckItem(
            name, True, f"missing: heatsync creates it ({want}) on its first run", warning=True
        )
    have = f"{current.type}/{current.fieldType}"
    if have != want:
        return CheckItem(
            name,
            False,
            f"is {have} but heatsync writes {want}: change its field type in HubSpot, or delete "
            "it so that heatsync creates it",
        )
    drift = [key for key in ("label", "description", "options") if key in _drift(current, wanted)]
    if drift:
        what = " and ".join([", ".join(drift[:-1]), drift[-1]] if len(drift) > 1 else drift)
        return CheckItem(
            name,
            True,
            f"present ({have}); its {what} will be updated to the {locale!r} texts on the next run",
            warning=True,
        )
    return CheckItem(name, True, f"present ({have})")


def check_schema(client: HubSpotClient, locale: str, vip_property: str) -> list[CheckItem]:
    """One item per property group and property heatsync owns, read only (nothing is written).

    Missing ones are ok with a warning (ensure_schema creates them), a wrong type is not ok, a
    label/description/options drift is ok with a warning (ensure_schema updates it). Raises
    ConnectorError when the definitions cannot be read.
    """
    items: list[CheckItem] = []
    specs = property_specs(locale, vip_property)
    group_label = label(locale, "group")
    for object_type in dict.fromkeys(t for t, _ in specs):
        name = f"group {GROUP_NAME} ({object_type})"
        group = client.get_group(object_type, GROUP_NAME)
        if group is None:
            items.append(
                CheckItem(name, True, "missing: heatsync creates it on its first run", warning=True)
            )
        elif group.label != group_label:
            items.append(CheckItem(name, True, "present; its label will be updated", warning=True))
        else:
            items.append(CheckItem(name, True, "present"))
    for object_type, body in specs:
        current = client.get_property(object_type, body["name"])
        items.append(_check_property(object_type, current, body, locale))
    if vip_property != DEFAULT_VIP_PROPERTY:
        # the portal's own VIP flag: heatsync only reads it
        name = f"field {vip_property}"
        if client.get_property(CONTACTS, vip_property) is None:
            items.append(
                CheckItem(
                    name,
                    True,
                    "missing: heatsync reads VIPs from it, so no contact counts as a VIP",
                    warning=True,
                )
            )
        else:
            items.append(CheckItem(name, True, "present (heatsync reads VIPs from it)"))
    return items


def ensure_schema(
    client: HubSpotClient, locale: str, vip_property: str = "heatsync_vip"
) -> list[str]:
    """Create heatsync's group and properties where missing; return the names created.

    Existing ones whose label, description or options differ from `locale`'s are PATCHed (one
    request per property); nothing is sent for those already equal. Names are
    "group:<object>/<name>" for groups and "<object>/<name>" for properties.
    """
    created: list[str] = []
    specs = property_specs(locale, vip_property)
    for object_type in dict.fromkeys(t for t, _ in specs):
        group_label = label(locale, "group")
        group = client.get_group(object_type, GROUP_NAME)
        if group is None:
            try:
                client.create_group(
                    object_type, {"name": GROUP_NAME, "label": group_label, "displayOrder": -1}
                )
                created.append(f"group:{object_type}/{GROUP_NAME}")
            except ConflictError:
                pass
        elif group.label != group_label:
            client.update_group(object_type, GROUP_NAME, {"label": group_label})
    for object_type, body in specs:
        current = client.get_property(object_type, body["name"])
        if current is None:
            try:
                client.create_property(object_type, body)
                created.append(f"{object_type}/{body['name']}")
                continue
            except ConflictError:
                current = client.get_property(object_type, body["name"])
                if current is None:
                    raise
        patch = _drift(current, body)
        if patch:
            log.info("updating %s/%s: %s drifted", object_type, body["name"], sorted(patch))
            client.update_property(object_type, body["name"], patch)
    return created
