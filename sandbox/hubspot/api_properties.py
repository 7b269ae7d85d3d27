"""Properties and property groups in the HubSpot emulator: read, create, update, archive."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from sandbox.hubspot import schema
from sandbox.hubspot.common import ApiBase, bool_param
from sandbox.hubspot.state import iso_ms, now_ms
from sandbox.hubspot.transport import ApiError, Request, Response


class PropertiesApi(ApiBase):
    """Handlers of properties and property groups."""

    _TYPES_FIELDS: ClassVar[dict[str, set[str]]] = {
        "bool": {"booleancheckbox", "calculation_equation"},
        "enumeration": {"booleancheckbox", "checkbox", "radio", "select", "calculation_equation"},
        "date": {"date"},
        "datetime": {"date"},
        "string": {"text", "textarea", "html", "phonenumber", "file", "calculation_equation"},
        "number": {"number", "calculation_equation"},
        "phone_number": {"phonenumber"},
    }

    def h_properties_list(self, req: Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        archived = bool_param(req.query, "archived")
        results = [
            d
            for d in self.state.properties[obj_type].values()
            if bool(d.get("archived")) == archived
        ]
        return Response(200, {"results": results})

    def h_property_get(self, req: Request, flavor: str, type_name: str, name: str) -> Response:
        obj_type = self._type(type_name)
        definition = self.state.properties[obj_type].get(name)
        if definition is None or (
            definition.get("archived") and not bool_param(req.query, "archived")
        ):
            raise ApiError(
                404, "OBJECT_NOT_FOUND", f"Unable to find property {name} for {obj_type}."
            )
        return Response(200, definition)

    def _check_definition(self, obj_type: str, d: dict[str, Any]) -> None:
        type_, field_type = d.get("type"), d.get("fieldType")
        if type_ not in self._TYPES_FIELDS:
            raise ApiError(400, "VALIDATION_ERROR", f"Invalid property type {type_!r}.")
        if field_type not in self._TYPES_FIELDS[type_]:
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                f"fieldType {field_type!r} is not valid for type {type_!r}.",
            )
        if d.get("groupName") not in self.state.groups[obj_type]:
            raise ApiError(
                400, "VALIDATION_ERROR", f"Property group {d.get('groupName')!r} does not exist."
            )
        options = d.get("options") or []
        if type_ == "enumeration" and field_type != "booleancheckbox" and not options:
            raise ApiError(400, "VALIDATION_ERROR", "Enumeration properties need options.")
        for opt in options:
            if not isinstance(opt, dict) or "value" not in opt or "label" not in opt:
                raise ApiError(
                    400, "VALIDATION_ERROR", f"Invalid option {opt!r}: label and value required."
                )

    def h_property_create(self, req: Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        body = req.json() or {}
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise ApiError(
                400, "VALIDATION_ERROR", f"Missing required fields: {', '.join(missing)}"
            )
        name = str(body["name"])
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ApiError(400, "VALIDATION_ERROR", f"Invalid property name {name!r}.")
        existing = self.state.properties[obj_type].get(name)
        if existing is not None and not existing.get("archived"):
            raise ApiError(409, "OBJECT_ALREADY_EXISTS", f"Property named '{name}' already exists.")
        self._check_definition(obj_type, body)
        stamp = iso_ms(now_ms())
        definition = schema.property_definition(
            name,
            str(body["label"]),
            str(body["type"]),
            str(body["fieldType"]),
            str(body["groupName"]),
            [
                {
                    "label": o["label"],
                    "value": o["value"],
                    "displayOrder": o.get("displayOrder", i),
                    "hidden": bool(o.get("hidden", False)),
                    **({"description": o["description"]} if o.get("description") else {}),
                }
                for i, o in enumerate(body.get("options") or [])
            ],
            hubspot_defined=False,
            stamp=stamp,
            description=str(body.get("description") or ""),
        )
        definition["hubspotDefined"] = False
        definition["displayOrder"] = body.get("displayOrder", -1)
        definition["hidden"] = bool(body.get("hidden", False))
        definition["formField"] = bool(body.get("formField", False))
        definition["hasUniqueValue"] = bool(body.get("hasUniqueValue", False))
        self.state.properties[obj_type][name] = definition
        self.state.version += 1
        return Response(201, definition)

    def h_property_update(self, req: Request, flavor: str, type_name: str, name: str) -> Response:
        obj_type = self._type(type_name)
        definition = self.state.properties[obj_type].get(name)
        if definition is None or definition.get("archived"):
            raise ApiError(
                404, "OBJECT_NOT_FOUND", f"Unable to find property {name} for {obj_type}."
            )
        if definition["modificationMetadata"]["readOnlyDefinition"]:
            raise ApiError(400, "VALIDATION_ERROR", f"{name} is a read-only HubSpot property.")
        body = req.json() or {}
        allowed = {
            "label",
            "description",
            "groupName",
            "options",
            "displayOrder",
            "hidden",
            "formField",
            "type",
            "fieldType",
        }
        unknown = set(body) - allowed
        if unknown:
            raise ApiError(400, "VALIDATION_ERROR", f"Unknown fields: {sorted(unknown)}")
        updated = {**definition, **body}
        if "options" in body:
            updated["options"] = [
                {
                    "label": o.get("label"),
                    "value": o.get("value"),
                    "displayOrder": o.get("displayOrder", i),
                    "hidden": bool(o.get("hidden", False)),
                    **({"description": o["description"]} if o.get("description") else {}),
                }
                for i, o in enumerate(body["options"] or [])
            ]
        self._check_definition(obj_type, updated)
        updated["updatedAt"] = iso_ms(now_ms())
        self.state.properties[obj_type][name] = updated
        self.state.version += 1
        return Response(200, updated)

    def h_property_archive(self, req: Request, flavor: str, type_name: str, name: str) -> Response:
        obj_type = self._type(type_name)
        definition = self.state.properties[obj_type].get(name)
        if definition is None:
            raise ApiError(
                404, "OBJECT_NOT_FOUND", f"Unable to find property {name} for {obj_type}."
            )
        if definition["modificationMetadata"]["readOnlyDefinition"]:
            raise ApiError(
                400, "VALIDATION_ERROR", f"{name} is a HubSpot property and cannot be archived."
            )
        definition["archived"] = True
        self.state.version += 1
        return Response(204)

    def h_groups_list(self, req: Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        return Response(200, {"results": list(self.state.groups[obj_type].values())})

    def h_group_get(self, req: Request, flavor: str, type_name: str, name: str) -> Response:
        obj_type = self._type(type_name)
        group = self.state.groups[obj_type].get(name)
        if group is None:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"Unable to find property group {name}.")
        return Response(200, group)

    def h_group_create(self, req: Request, flavor: str, type_name: str) -> Response:
        obj_type = self._type(type_name)
        body = req.json() or {}
        name, label = body.get("name"), body.get("label")
        if not name or not label or not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
            raise ApiError(
                400, "VALIDATION_ERROR", "A group needs a valid lower-case name and a label."
            )
        if name in self.state.groups[obj_type]:
            raise ApiError(
                409, "OBJECT_ALREADY_EXISTS", f"A property group named '{name}' already exists."
            )
        group = {
            "name": name,
            "label": label,
            "displayOrder": body.get("displayOrder", -1),
            "archived": False,
        }
        self.state.groups[obj_type][name] = group
        self.state.version += 1
        return Response(201, group)

    def h_group_update(self, req: Request, flavor: str, type_name: str, name: str) -> Response:
        obj_type = self._type(type_name)
        group = self.state.groups[obj_type].get(name)
        if group is None:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"Unable to find property group {name}.")
        body = req.json() or {}
        for key in ("label", "displayOrder"):
            if key in body:
                group[key] = body[key]
        self.state.version += 1
        return Response(200, group)
