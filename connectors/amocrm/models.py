"""Payload models of amoCRM's API v4 that heatsync parses as a whole (records stay dicts, so that
each can be validated on its own and quarantined)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class TokenResponse(_Loose):
    token_type: str = "Bearer"
    expires_in: int = 86_400
    access_token: str
    refresh_token: str | None = None
    server_time: int | None = None


class TaskType(_Loose):
    id: int
    name: str = ""
    code: str | None = None


class Account(_Loose):
    id: int
    name: str | None = None
    subdomain: str | None = None
    currency: str | None = None
    country: str | None = None
    current_user_id: int | None = None
    embedded: dict[str, Any] = Field(default_factory=dict, alias="_embedded")

    @property
    def time_zone(self) -> str | None:
        settings = self.embedded.get("datetime_settings") or {}
        zone = settings.get("timezone") if isinstance(settings, dict) else None
        return str(zone) if zone else None

    @property
    def api_filter_enabled(self) -> bool | None:
        """`is_api_filter_enabled` (None when the account did not say)."""
        flag = (self.model_extra or {}).get("is_api_filter_enabled")
        return flag if isinstance(flag, bool) else None

    @property
    def task_types(self) -> list[TaskType]:
        return [TaskType.model_validate(t) for t in self.embedded.get("task_types") or []]


class Enum(_Loose):
    id: int
    value: str = ""
    sort: int = 0
    code: str | None = None


class CustomField(_Loose):
    id: int
    name: str = ""
    type: str = ""
    code: str | None = None
    sort: int | None = None
    is_api_only: bool = False
    enums: list[Enum] | None = None

    def enum_by_id(self) -> dict[int, Enum]:
        return {e.id: e for e in self.enums or []}


class Status(_Loose):
    id: int
    name: str = ""
    sort: int = 0
    pipeline_id: int | None = None


class Pipeline(_Loose):
    id: int
    name: str = ""
    embedded: dict[str, Any] = Field(default_factory=dict, alias="_embedded")

    @property
    def statuses(self) -> list[Status]:
        return [Status.model_validate(s) for s in self.embedded.get("statuses") or []]
