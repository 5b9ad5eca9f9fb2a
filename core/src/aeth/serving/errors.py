"""Errors as the API returns them: OpenAI's body (``{"error": {message, type, param, code}}``),
the right status, and ``Retry-After`` where waiting helps. The openai SDK turns each status into
its own exception type (401 AuthenticationError, 429 RateLimitError, ...)."""

from __future__ import annotations

from typing import Any

#: OpenAI's ``type`` for each status aeth returns
TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
         404: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error", 503: "server_overloaded"}


class APIError(Exception):
    """A request the server refuses: ``status``, a message the client can act on, and OpenAI's fields."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 retry_after: float | None = None, reason: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.retry_after = retry_after
        self.reason = reason or code or str(status)  #: the label of the rejection in metrics

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": TYPES.get(self.status, "invalid_request_error"),
                          "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, int(self.retry_after + 0.999)))
        if self.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return headers


def from_validation(errors: list[dict[str, Any]]) -> APIError:
    """A 400 naming the first invalid field of a body pydantic refused (``messages.0.role``)."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    where = f"'{param}': " if param else ""
    return APIError(400, f"{where}{first.get('msg', 'invalid value')}{more}", code="invalid_request", param=param,
                    reason="invalid")
