"""Routing of the HubSpot emulator: API prefixes (v3, v4, dated versions) folded to one path, the
route table (handler, is it a write, is it a search) and the route keys of `stats()['by_route']`.
"""

from __future__ import annotations

import re

PREFIXES = [
    (re.compile(r"^/crm/v3/objects(?=/|$)"), "objects", "v3"),
    (re.compile(r"^/crm/v4/objects(?=/|$)"), "objects", "v4"),
    (re.compile(r"^/crm/objects/\d{4}-\d{2}(?:-beta)?(?=/|$)"), "objects", "dated"),
    (re.compile(r"^/crm/associations/\d{4}-\d{2}(?:-beta)?/objects(?=/|$)"), "objects", "dated"),
    (re.compile(r"^/crm/v4/associations(?=/|$)"), "associations", "v4"),
    (re.compile(r"^/crm/associations/\d{4}-\d{2}(?:-beta)?(?=/|$)"), "associations", "dated"),
    (re.compile(r"^/crm/v3/properties(?=/|$)"), "properties", "v3"),
    (re.compile(r"^/crm/properties/\d{4}-\d{2}(?:-beta)?(?=/|$)"), "properties", "dated"),
    (re.compile(r"^/crm/v3/owners(?=/|$)"), "owners", "v3"),
    (re.compile(r"^/crm/owners/\d{4}-\d{2}(?:-beta)?(?=/|$)"), "owners", "dated"),
    (re.compile(r"^/crm/v3/pipelines(?=/|$)"), "pipelines", "v3"),
    (re.compile(r"^/crm/pipelines/\d{4}-\d{2}(?:-beta)?(?=/|$)"), "pipelines", "dated"),
    (re.compile(r"^/account-info/(?:v3|\d{4}-\d{2})/details$"), "account", "v3"),
    (re.compile(r"^/oauth/(?:v1|v3|\d{4}-\d{2})/token$"), "oauth/token", "v3"),
    (re.compile(r"^/oauth/v2/private-apps/get/access-token-info$"), "oauth/token-info", "v2"),
    (re.compile(r"^/oauth/v1/access-tokens(?=/|$)"), "oauth/access-tokens", "v1"),
]

S = r"([^/]+)"
# (method, pattern over the normalized path, handler, is_write, is_search)
ROUTES: list[tuple[str, re.Pattern[str], str, bool, bool]] = [
    (m, re.compile(p), h, w, s)
    for m, p, h, w, s in [
        ("POST", r"^oauth/token$", "oauth_token", False, False),
        ("POST", r"^oauth/token-info$", "private_app_token_info", False, False),
        ("GET", rf"^oauth/access-tokens/{S}$", "access_token_info", False, False),
        ("GET", r"^account$", "account", False, False),
        ("GET", r"^owners$", "owners_list", False, False),
        ("GET", rf"^owners/{S}$", "owner_get", False, False),
        ("GET", rf"^pipelines/{S}$", "pipelines_list", False, False),
        ("GET", rf"^pipelines/{S}/{S}$", "pipeline_get", False, False),
        ("GET", rf"^pipelines/{S}/{S}/stages$", "pipeline_stages", False, False),
        ("GET", rf"^properties/{S}/groups$", "groups_list", False, False),
        ("POST", rf"^properties/{S}/groups$", "group_create", True, False),
        ("GET", rf"^properties/{S}/groups/{S}$", "group_get", False, False),
        ("PATCH", rf"^properties/{S}/groups/{S}$", "group_update", True, False),
        ("GET", rf"^properties/{S}$", "properties_list", False, False),
        ("POST", rf"^properties/{S}$", "property_create", True, False),
        ("GET", rf"^properties/{S}/{S}$", "property_get", False, False),
        ("PATCH", rf"^properties/{S}/{S}$", "property_update", True, False),
        ("DELETE", rf"^properties/{S}/{S}$", "property_archive", True, False),
        ("POST", rf"^objects/{S}/search$", "search", False, True),
        ("POST", rf"^objects/{S}/batch/read$", "batch_read", False, False),
        ("POST", rf"^objects/{S}/batch/create$", "batch_create", True, False),
        ("POST", rf"^objects/{S}/batch/update$", "batch_update", True, False),
        ("POST", rf"^objects/{S}/batch/archive$", "batch_archive", True, False),
        ("GET", rf"^objects/{S}/{S}/associations/{S}$", "object_associations", False, False),
        (
            "PUT",
            rf"^objects/{S}/{S}/associations/default/{S}/{S}$",
            "associate_default",
            True,
            False,
        ),
        ("PUT", rf"^objects/{S}/{S}/associations/{S}/{S}(?:/{S})?$", "associate", True, False),
        ("DELETE", rf"^objects/{S}/{S}/associations/{S}/{S}(?:/{S})?$", "unassociate", True, False),
        ("GET", rf"^objects/{S}$", "list", False, False),
        ("POST", rf"^objects/{S}$", "create", True, False),
        ("GET", rf"^objects/{S}/{S}$", "get", False, False),
        ("PATCH", rf"^objects/{S}/{S}$", "update", True, False),
        ("DELETE", rf"^objects/{S}/{S}$", "archive", True, False),
        ("POST", rf"^associations/{S}/{S}/batch/read$", "assoc_batch_read", False, False),
        ("POST", rf"^associations/{S}/{S}/batch/create$", "assoc_batch_create", True, False),
        (
            "POST",
            rf"^associations/{S}/{S}/batch/associate/default$",
            "assoc_batch_default",
            True,
            False,
        ),
    ]
]
# Path segments that are ids in by_route keys.
ID_ARGS = {
    "access_token_info": (0,),  # the token itself: never in stats
    "owner_get": (0,),
    "group_get": (1,),
    "group_update": (1,),
    "property_get": (1,),
    "property_update": (1,),
    "property_archive": (1,),
    "object_associations": (1,),
    "associate_default": (1, 3),
    "associate": (1, 3, 4),
    "unassociate": (1, 3, 4),
    "get": (1,),
    "update": (1,),
    "archive": (1,),
    "pipeline_get": (1,),
    "pipeline_stages": (1,),
}


def normalize(path: str) -> tuple[str, str]:
    path = path.rstrip("/") or "/"
    for pattern, name, flavor in PREFIXES:
        m = pattern.match(path)
        if m:
            return name + path[m.end() :], flavor
    return path, "v3"


def match(method: str, normalized: str) -> tuple[tuple, tuple[str, ...]] | None:
    for route in ROUTES:
        if route[0] != method:
            continue
        m = route[1].match(normalized)
        if m:
            return route, tuple(g for g in m.groups() if g is not None)
    return None


def route_key(method: str, normalized: str, route: tuple | None) -> str:
    if route is None:
        return f"{method} {normalized}"
    parts = normalized.split("/")
    handler = route[0][2]
    args = list(route[1])
    for i in ID_ARGS.get(handler, ()):
        if i < len(args):
            args[i] = "{id}"
    # rebuild: replace captured segments, in order, by their (possibly masked) values
    out, k = [], 0
    originals = route[1]
    for seg in parts:
        if k < len(originals) and seg == originals[k]:
            out.append(args[k])
            k += 1
        else:
            out.append(seg)
    return f"{method} {'/'.join(out)}"
