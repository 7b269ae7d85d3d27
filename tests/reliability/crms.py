"""The two sandbox CRMs as the fault matrix sees them: how to start one seeded portal, the
variables `heatsync run` reads, what heatsync owns in it (its contact fields and tasks) and what it
does not (everything else), and the CRM-specific faults (tokens, blocks, tampered answers)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from sandbox.amocrm.common import HTML, AmoOptions
from sandbox.amocrm.common import Response as AmoResponse
from sandbox.amocrm.render import generate_state as amo_state
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state as hubspot_state

# heatsync's own fields whose value is the moment of its write: they differ between any two runs
WRITE_STAMPS = {"heatsync_updated_at", "HEATSYNC_UPDATED_AT"}
# the team's VIP flag: heatsync creates the field but never writes it
NOT_OWNED = {"heatsync_vip", "HEATSYNC_VIP"}
# HubSpot maintains these on every write
HUBSPOT_SYSTEM = {"lastmodifieddate", "hs_lastmodifieddate"}
# amoCRM maintains these (closest_task_at: the contact's next open task)
AMO_SYSTEM = {"custom_fields_values", "updated_at", "updated_by", "closest_task_at"}

Owned = dict[str, dict[str, str]]  # contact id -> heatsync field -> value
Tasks = Counter[tuple[str, str]]  # (contact id, task key or marker) -> count

# the connectors' read timeout is 60 s
SLOW_S = 61.0
HTML_PAGE = b"<html><head><title>Maintenance</title></head><body>Back soon</body></html>"


def _secret(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(16)}"


class Server(Protocol):
    def set_faults(self, **changes: Any) -> None: ...
    def stats(self) -> dict[str, Any]: ...


@dataclass
class Trigger:
    """Calls `action` once, just before the sandbox answers the first request `matches` names."""

    matches: Callable[[str, str], bool]
    action: Callable[[], None]
    fired: threading.Event = field(default_factory=threading.Event)


class Portal:
    """One sandbox CRM serving a seeded portal; subclasses per CRM."""

    crm: str
    server: Any

    def __init__(self, contacts: int, seed: int, anchor: date, oauth: bool) -> None:
        self.contacts, self.seed, self.anchor, self.oauth = contacts, seed, anchor, oauth
        self.triggers: list[Trigger] = []
        self._tamper: list[tuple[Callable[[str, str], bool], str, int]] = []
        self._tamper_lock = threading.Lock()
        self.done: Counter[str] = Counter()  # tampered answers given, by kind

    # -- the hook: triggers fire and tampered answers replace the sandbox's, request by request
    def install(self) -> None:
        inner = self.server.handle

        def handle(req: Any) -> Any:
            method, path = req.method, req.path
            for trigger in self.triggers:
                if not trigger.fired.is_set() and trigger.matches(method, path):
                    trigger.fired.set()
                    trigger.action()
            kind = self._take_tamper(method, path)
            if kind == "reject":
                self.done[kind] += 1
                return self.rejected(req)
            if kind == "slow":  # past the client's read timeout; then the request is applied
                self.done[kind] += 1
                time.sleep(SLOW_S)
                return inner(req)
            response = inner(req)
            if kind and 200 <= response.status < 300 and response.status != 204:
                self.done[kind] += 1
                return self.tampered(kind)
            return response

        self.server.handle = handle

    def tamper(self, matches: Callable[[str, str], bool], kind: str, times: int) -> None:
        """The next `times` requests `matches` names get a `kind` answer: "html" or "empty" (a
        200 whose body is an HTML page or nothing, after the request was applied), "reject" (a
        whole batch refused, nothing applied) or "slow" (answered after the client gave up)."""
        with self._tamper_lock:
            self._tamper.append((matches, kind, times))

    def _take_tamper(self, method: str, path: str) -> str | None:
        with self._tamper_lock:
            for i, (matches, kind, left) in enumerate(self._tamper):
                if left > 0 and matches(method, path):
                    self._tamper[i] = (matches, kind, left - 1)
                    return kind
        return None

    def clear(self) -> None:
        with self._tamper_lock:
            self._tamper.clear()
        self.triggers.clear()

    def today(self) -> str:
        """The portal's local day now (what `heatsync run` scores)."""
        import pandas as pd

        from pipelines.run.asof import local_today

        return local_today(self.timezone(), pd.Timestamp.now(tz="UTC"))

    # -- per CRM
    def timezone(self) -> str:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.server.stop()

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def secrets(self) -> dict[str, str]:
        raise NotImplementedError

    def owned(self) -> Owned:
        raise NotImplementedError

    def foreign(self) -> dict[str, Any]:
        raise NotImplementedError

    def tasks(self) -> Tasks:
        raise NotImplementedError

    def is_writeback(self, method: str, path: str) -> bool:
        raise NotImplementedError

    def is_task_create(self, method: str, path: str) -> bool:
        raise NotImplementedError

    def is_read(self, method: str, path: str) -> bool:
        raise NotImplementedError

    def expire_tokens(self) -> None:
        raise NotImplementedError

    def revoke_refresh(self) -> None:
        raise NotImplementedError

    def grant_again(self) -> dict[str, str]:
        """After a revocation: what a person does (authorize again), as variables."""
        raise NotImplementedError

    def tampered(self, kind: str) -> Any:
        raise NotImplementedError

    def rejected(self, req: Any) -> Any:
        raise NotImplementedError


class HubSpot(Portal):
    crm = "hubspot"
    server: SandboxServer

    def start(self) -> None:
        self.options = SandboxOptions(
            token=_secret("hs-pat"),
            client_id="hs-client-" + secrets.token_hex(4),
            client_secret=_secret("hs-client-secret"),
            refresh_token=_secret("hs-refresh"),
            seed=self.seed,
        )
        state = hubspot_state(self.contacts, seed=self.seed, anchor=self.anchor)
        self.server = SandboxServer(state, self.options, port=0).start()
        self.install()

    def timezone(self) -> str:
        return str(self.server.state.account.get("timeZone", "UTC"))

    def env(self) -> dict[str, str]:
        out = {"HEATSYNC_CRM": "hubspot", "HUBSPOT_BASE_URL": self.server.base_url}
        if self.oauth:
            out |= {
                "HUBSPOT_CLIENT_ID": self.options.client_id,
                "HUBSPOT_CLIENT_SECRET": self.options.client_secret,
                "HUBSPOT_REFRESH_TOKEN": self.options.refresh_token,
            }
        else:
            out["HUBSPOT_ACCESS_TOKEN"] = self.options.token
        return out

    def secrets(self) -> dict[str, str]:
        with self.server._meta:
            issued = list(self.server._oauth)
        named = {
            "private app token": self.options.token,
            "client secret": self.options.client_secret,
            "refresh token": self.options.refresh_token,
        }
        return named | {f"access token {i}": t for i, t in enumerate(issued)}

    def owned(self) -> Owned:
        with self.server.lock:
            return {
                str(rec.id): {
                    k: v
                    for k, v in rec.props.items()
                    if k.startswith("heatsync_") and k not in WRITE_STAMPS | NOT_OWNED and v
                }
                for rec in self.server.state.iter_live("contacts")
            }

    def foreign(self) -> dict[str, Any]:
        with self.server.lock:
            state = self.server.state
            contacts = {
                str(rec.id): {
                    k: v
                    for k, v in rec.props.items()
                    if not k.startswith("heatsync_") or k in NOT_OWNED
                    if k not in HUBSPOT_SYSTEM
                }
                for rec in state.iter_live("contacts")
            }
            others = {
                kind: {
                    str(rec.id): dict(rec.props)
                    for rec in state.iter_live(kind)
                    if not rec.props.get("heatsync_task_key")
                }
                for kind in ("deals", "tasks", "calls", "notes", "meetings", "emails")
            }
            return {"contacts": contacts, **others}

    def tasks(self) -> Tasks:
        with self.server.lock:
            keys = [
                rec.props["heatsync_task_key"]
                for rec in self.server.state.iter_live("tasks")
                if rec.props.get("heatsync_task_key")
            ]
        return Counter((key.split(":")[1], key) for key in keys)

    def is_writeback(self, method: str, path: str) -> bool:
        return method == "POST" and "/contacts/batch/update" in path

    def is_task_create(self, method: str, path: str) -> bool:
        return method == "POST" and "/tasks/batch/create" in path

    def is_read(self, method: str, path: str) -> bool:
        return method == "GET" or path.endswith(("/search", "/batch/read"))

    def expire_tokens(self) -> None:
        self.server.expire_oauth_tokens()

    def revoke_refresh(self) -> None:
        self._granted = self.options.refresh_token
        self.server.set_faults(refresh_token=_secret("hs-revoked"))
        self.server.expire_oauth_tokens()

    def grant_again(self) -> dict[str, str]:
        self.server.set_faults(refresh_token=self._granted)
        return {}

    def tampered(self, kind: str) -> Any:
        from sandbox.hubspot.transport import Response

        if kind == "html":
            return Response(200, raw=HTML_PAGE, content_type="text/html")
        return Response(200, raw=b"")

    def rejected(self, req: Any) -> Any:
        from sandbox.hubspot.transport import Response

        body = {
            "status": "error",
            "message": "Property values were not valid",
            "correlationId": "fault-matrix",
            "category": "VALIDATION_ERROR",
        }
        return Response(400, body)


class AmoCrm(Portal):
    crm = "amocrm"
    server: AmoSandboxServer

    def start(self) -> None:
        self.options = AmoOptions(
            client_id="amo-client-" + secrets.token_hex(4),
            client_secret=_secret("amo-client-secret"),
            redirect_uri="https://heatsync.example/amocrm/callback",
            refresh_token=_secret("amo-refresh"),
            long_lived_token=_secret("amo-llt"),
            auth_code=None,
            rate_per_second=7,
            seed=self.seed,
        )
        self.issued: list[str] = []
        state = amo_state(self.contacts, seed=self.seed, anchor=self.anchor)
        self.server = AmoSandboxServer(state, self.options, port=0).start()
        answer = self.server.tokens.token_endpoint

        def spy(req: Any) -> Any:
            response = answer(req)
            body = response.body if isinstance(response.body, dict) else {}
            self.issued.extend(str(body[k]) for k in ("access_token", "refresh_token") if k in body)
            return response

        self.server.tokens.token_endpoint = spy  # type: ignore[method-assign]
        self.install()

    def timezone(self) -> str:
        return self.server.state.timezone

    def env(self) -> dict[str, str]:
        out = {"HEATSYNC_CRM": "amocrm", "AMOCRM_BASE_URL": self.server.base_url}
        if self.oauth:
            out |= {
                "AMOCRM_CLIENT_ID": self.options.client_id,
                "AMOCRM_CLIENT_SECRET": self.options.client_secret,
                "AMOCRM_REDIRECT_URI": self.options.redirect_uri,
                "AMOCRM_REFRESH_TOKEN": str(self.options.refresh_token),
            }
        else:
            out["AMOCRM_ACCESS_TOKEN"] = str(self.options.long_lived_token)
        return out

    def secrets(self) -> dict[str, str]:
        named = {
            "long-lived token": str(self.options.long_lived_token),
            "client secret": self.options.client_secret,
            "refresh token": str(self.options.refresh_token),
        }
        return named | {f"issued token {i}": t for i, t in enumerate(self.issued)}

    def _codes(self) -> dict[int, str]:
        return {
            f["id"]: str(f.get("code") or "") for f in self.server.state.custom_fields["contacts"]
        }

    @staticmethod
    def _value(definition: dict[str, Any] | None, values: list[dict[str, Any]]) -> str:
        enums = {e["id"]: e.get("code") for e in (definition or {}).get("enums") or []}
        shown = [
            str(enums.get(v["enum_id"], v["enum_id"])) if "enum_id" in v else json.dumps(v)
            for v in values
        ]
        return "|".join(sorted(shown))

    def owned(self) -> Owned:
        with self.server.lock:
            state = self.server.state
            codes = self._codes()
            out: Owned = {}
            for contact in state.contacts.values():
                if contact.get("is_deleted"):
                    continue
                mine: dict[str, str] = {}
                for value in contact.get("custom_fields_values") or []:
                    code = codes.get(value["field_id"], "")
                    if code.startswith("HEATSYNC_") and code not in WRITE_STAMPS | NOT_OWNED:
                        definition = state.field("contacts", field_id=value["field_id"])
                        shown = self._value(definition, value["values"] or [])
                        if shown:
                            mine[code] = shown
                out[str(contact["id"])] = mine
            return out

    def foreign(self) -> dict[str, Any]:
        with self.server.lock:
            state = self.server.state
            codes = self._codes()
            contacts = {}
            for contact in state.contacts.values():
                kept = {k: v for k, v in contact.items() if k not in AMO_SYSTEM}
                kept["custom_fields_values"] = sorted(
                    json.dumps(v, sort_keys=True, ensure_ascii=False)
                    for v in contact.get("custom_fields_values") or []
                    if not codes.get(v["field_id"], "").startswith("HEATSYNC_")
                    or codes.get(v["field_id"]) in NOT_OWNED
                )
                contacts[str(contact["id"])] = kept
            return {
                "contacts": contacts,
                "leads": json.loads(json.dumps(state.leads, default=str)),
                "tasks": {
                    str(i): dict(t) for i, t in state.tasks.items() if "[hs:" not in t["text"]
                },
                "notes": json.loads(json.dumps(state.notes, default=str)),
            }

    def tasks(self) -> Tasks:
        with self.server.lock:
            found = [
                (str(t.get("entity_id")), t["text"][t["text"].index("[hs:") :])
                for t in self.server.state.tasks.values()
                if "[hs:" in t["text"]
            ]
        return Counter(found)

    def is_writeback(self, method: str, path: str) -> bool:
        return method == "PATCH" and path.rstrip("/") == "/api/v4/contacts"

    def is_task_create(self, method: str, path: str) -> bool:
        return method == "POST" and path.rstrip("/") == "/api/v4/tasks"

    def is_read(self, method: str, path: str) -> bool:
        return method == "GET"

    def expire_tokens(self) -> None:
        self.server.expire_access_tokens()

    def revoke_refresh(self) -> None:
        with self.server.lock:
            for entry in self.server.state.oauth["refresh"].values():
                entry["expires_at"] = 0.0
        self.server.expire_access_tokens()

    def grant_again(self) -> dict[str, str]:
        token = _secret("amo-regranted")
        with self.server.lock:
            self.server.tokens._put("refresh", token, time.time() + 86_400)
        self.issued.append(token)
        return {"AMOCRM_REFRESH_TOKEN": token}

    def tampered(self, kind: str) -> Any:
        if kind == "html":
            return AmoResponse(200, raw=HTML_PAGE, content_type=HTML)
        return AmoResponse(200, raw=b"")

    def rejected(self, req: Any) -> Any:
        from sandbox.amocrm.common import error_response, validation_error

        try:
            items = json.loads(req.body)
        except ValueError:
            items = []
        first = items[0] if isinstance(items, list) and items else {}
        rid = str(first.get("request_id", 0)) if isinstance(first, dict) else "0"
        return error_response(
            validation_error([(rid, "NotSupportedChoice", "custom_fields_values", "Rejected.")])
        )


PORTALS: dict[str, type[Portal]] = {"hubspot": HubSpot, "amocrm": AmoCrm}


@contextmanager
def portal(crm: str, contacts: int, seed: int, anchor: date, oauth: bool) -> Iterator[Portal]:
    p = PORTALS[crm](contacts, seed, anchor, oauth)
    p.start()
    try:
        yield p
    finally:
        p.stop()
