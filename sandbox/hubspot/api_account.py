"""Owners, deal pipelines and account details in the HubSpot emulator."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.hubspot.common import OWNERS_LIMIT_MAX, ApiBase, bool_param, int_param
from sandbox.hubspot.transport import ApiError, Request, Response


class AccountApi(ApiBase):
    """Handlers of owners, deal pipelines and account details."""

    def h_owners_list(self, req: Request, flavor: str) -> Response:
        limit = int_param(req.query, "limit", 100)
        if limit < 1 or limit > OWNERS_LIMIT_MAX:
            raise ApiError(
                400, "VALIDATION_ERROR", f"limit must be between 1 and {OWNERS_LIMIT_MAX}"
            )
        after = int_param(req.query, "after", 0)
        email_values = req.query.get("email")
        email = email_values[-1] if email_values else None
        archived = bool_param(req.query, "archived")
        owners = [
            o
            for o in self.state.owners
            if o.get("archived", False) == archived and (email is None or o["email"] == email)
        ]
        page = owners[after : after + limit]
        body: dict[str, Any] = {"results": page}
        if after + limit < len(owners):
            body["paging"] = self._link(req.path, str(after + limit))
        return Response(200, body)

    def h_owner_get(self, req: Request, flavor: str, owner_id: str) -> Response:
        for owner in self.state.owners:
            if owner["id"] == owner_id:
                return Response(200, owner)
        raise ApiError(404, "OBJECT_NOT_FOUND", f"Owner {owner_id} not found.")

    def _pipelines(self, type_name: str) -> list[dict[str, Any]]:
        obj_type = self._type(type_name)
        return self.state.pipelines.get(obj_type, [])

    def h_pipelines_list(self, req: Request, flavor: str, type_name: str) -> Response:
        return Response(200, {"results": self._pipelines(type_name)})

    def h_pipeline_get(self, req: Request, flavor: str, type_name: str, pid: str) -> Response:
        for pipeline in self._pipelines(type_name):
            if pipeline["id"] == pid:
                return Response(200, pipeline)
        raise ApiError(404, "OBJECT_NOT_FOUND", f"Pipeline {pid} not found.")

    def h_pipeline_stages(self, req: Request, flavor: str, type_name: str, pid: str) -> Response:
        pipeline = self.h_pipeline_get(req, flavor, type_name, pid).body
        return Response(200, {"results": pipeline["stages"]})

    def h_account(self, req: Request, flavor: str) -> Response:
        body = dict(self.state.account)
        offset = datetime.now(ZoneInfo(body["timeZone"])).utcoffset()
        seconds = int(offset.total_seconds()) if offset else 0
        sign = "+" if seconds >= 0 else "-"
        body["utcOffset"] = f"{sign}{abs(seconds) // 3600:02d}:{abs(seconds) % 3600 // 60:02d}"
        body["utcOffsetMilliseconds"] = seconds * 1000
        return Response(200, body)
