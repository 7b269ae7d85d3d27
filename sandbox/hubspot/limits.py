"""Rate limits and faults of the HubSpot emulator: the ten-secondly and secondly (search) limits
with HubSpot's headers and 429 bodies, and the 5xx answers of an injected fault. Both windows
shrink by `time_scale` (a faster clock for benchmarks).
"""

from __future__ import annotations

import collections
import math
import time
import uuid

from sandbox.hubspot.common import ApiBase
from sandbox.hubspot.transport import Response

_HTML_5XX = (
    "<html><head><title>{code} {reason}</title></head><body><center><h1>{code} {reason}"
    "</h1></center><hr><center>sandbox-edge</center></body></html>"
)


class LimitsMixin(ApiBase):
    """Rate limits and injected 5xx answers of `SandboxServer.handle`."""

    _burst: collections.deque[float]
    _search: collections.deque[float]
    _daily: int

    def _rate_limit(self, is_search: bool) -> tuple[Response | None, dict[str, str]]:
        opts = self.options
        now = time.monotonic()
        burst_window_s = opts.burst_window_s / opts.time_scale
        with self._meta:
            if is_search:
                window = self._search
                while window and window[0] <= now - 1.0 / opts.time_scale:
                    window.popleft()
                if len(window) >= opts.search_per_second:
                    return self._rate_limited("SECONDLY", 1), {}
                window.append(now)
                return None, {}
            window = self._burst
            while window and window[0] <= now - burst_window_s:
                window.popleft()
            if len(window) >= opts.burst_limit:
                wait = max(1, math.ceil(window[0] + burst_window_s - now))
                return self._rate_limited("TEN_SECONDLY_ROLLING", wait), {}
            window.append(now)
            self._daily += 1
            headers = {
                "X-HubSpot-RateLimit-Max": str(opts.burst_limit),
                "X-HubSpot-RateLimit-Remaining": str(max(0, opts.burst_limit - len(window))),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(burst_window_s * 1000)),
                "X-HubSpot-RateLimit-Daily": str(opts.daily_limit),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, opts.daily_limit - self._daily)),
            }
            return None, headers

    def _rate_limited(self, policy: str, retry_after: int) -> Response:
        if policy == "SECONDLY":
            message = "You have reached your secondly limit."
        else:
            message = "You have reached your ten_secondly_rolling limit."
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
            "groupName": f"publicapi:private-app-api-calls-{policy.lower()}:sandbox",
        }
        return Response(429, body, headers={"Retry-After": str(retry_after)})

    @staticmethod
    def _server_error(u: float) -> Response:
        code, reason = [
            (502, "Bad Gateway"),
            (503, "Service Unavailable"),
            (504, "Gateway Timeout"),
        ][min(2, int(u * 3))]
        if code == 503:
            body = {
                "status": "error",
                "message": "The service is temporarily unavailable, please try again.",
                "correlationId": str(uuid.uuid4()),
                "category": "SERVICE_UNAVAILABLE",
            }
            return Response(code, body)
        html = _HTML_5XX.format(code=code, reason=reason).encode()
        return Response(code, raw=html, content_type="text/html")
