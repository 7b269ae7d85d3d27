"""Pydantic models of the HubSpot payloads heatsync reads (CRM v3/2026-03 shapes, v4 associations).

Property values arrive as strings (or null); parsing them into numbers and dates is extract's job.
Unknown fields are ignored so HubSpot can add fields without breaking us.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _as_str(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


# HubSpot sends ids as strings in most places but as numbers in some (v4 toObjectId, portalId).
StrId = Annotated[str, BeforeValidator(_as_str)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class HubSpotObject(_Model):
    id: StrId
    properties: dict[str, Any] = Field(default_factory=dict)
    createdAt: str | None = None
    updatedAt: str | None = None
    archived: bool = False
    archivedAt: str | None = None

    def prop(self, name: str) -> str | None:
        value = self.properties.get(name)
        if value is None:
            return None
        value = str(value)
        return value if value.strip() != "" else None


class NextPage(_Model):
    after: str
    link: str | None = None


class Paging(_Model):
    next: NextPage | None = None


class ListPage(_Model):
    results: list[dict[str, Any]] = Field(default_factory=list)
    paging: Paging | None = None


class SearchPage(_Model):
    total: int = 0
    results: list[dict[str, Any]] = Field(default_factory=list)
    paging: Paging | None = None


class StandardError(_Model):
    status: str | None = None
    category: str | None = None
    subCategory: Any = None
    message: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    id: StrId | None = None

    def ids(self) -> list[str]:
        """Object ids this error names (context.ids / context.id / id)."""
        out: list[str] = []
        for key in ("ids", "id"):
            values = self.context.get(key) or []
            out.extend(str(v) for v in (values if isinstance(values, list) else [values]))
        if self.id:
            out.append(str(self.id))
        return out

    def trace_ids(self) -> list[str]:
        values = self.context.get("objectWriteTraceId") or []
        return [str(v) for v in (values if isinstance(values, list) else [values])]


class BatchResponse(_Model):
    status: str | None = None
    results: list[dict[str, Any]] = Field(default_factory=list)
    errors: list[StandardError] = Field(default_factory=list)
    numErrors: int = 0


class AssociationType(_Model):
    category: str | None = None
    typeId: int | None = None
    label: str | None = None


class AssociationTarget(_Model):
    toObjectId: StrId
    associationTypes: list[AssociationType] = Field(default_factory=list)


class AssociationIdRef(_Model):
    id: StrId


class AssociationResult(_Model):
    from_: AssociationIdRef = Field(alias="from")
    to: list[AssociationTarget] = Field(default_factory=list)
    paging: Paging | None = None


class Owner(_Model):
    id: StrId
    email: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    userId: int | None = None
    archived: bool = False


class StageMetadata(_Model):
    isClosed: bool | str | None = None
    probability: float | str | None = None

    def closed(self) -> bool:
        value = self.isClosed
        return value is True or (isinstance(value, str) and value.lower() == "true")

    def prob(self) -> float | None:
        try:
            return None if self.probability is None else float(self.probability)
        except ValueError:
            return None


class PipelineStage(_Model):
    id: StrId
    label: str
    displayOrder: int | None = None
    metadata: StageMetadata = Field(default_factory=StageMetadata)
    archived: bool = False


class Pipeline(_Model):
    id: StrId
    label: str
    displayOrder: int | None = None
    stages: list[PipelineStage] = Field(default_factory=list)
    archived: bool = False


class AccountDetails(_Model):
    portalId: StrId
    timeZone: str | None = None
    companyCurrency: str | None = None
    utcOffset: str | None = None
    uiDomain: str | None = None
    dataHostingLocation: str | None = None
    accountType: str | None = None


class PropertyOption(_Model):
    label: str
    value: str
    displayOrder: int | None = None
    hidden: bool = False
    description: str | None = None


class PropertyDefinition(_Model):
    name: str
    label: str
    type: str
    fieldType: str
    groupName: str | None = None
    description: str | None = None
    options: list[PropertyOption] = Field(default_factory=list)
    hidden: bool = False


class PropertyGroup(_Model):
    name: str
    label: str
    displayOrder: int | None = None
    archived: bool = False


class TokenResponse(_Model):
    access_token: str
    refresh_token: str | None = None
    expires_in: int = 1800
    token_type: str | None = None

    def __repr__(self) -> str:  # never show the tokens
        return f"TokenResponse(expires_in={self.expires_in})"

    __str__ = __repr__
