"""The one error type. It becomes a Socket.IO error ack or an HTTP error response."""

from __future__ import annotations

from typing import Any, Literal

ErrorCode = Literal[
    "unauthorized", "forbidden", "invalid", "not_found", "conflict", "rate_limited", "too_large", "unavailable"
]

HTTP_STATUS: dict[str, int] = {
    "unauthorized": 401,
    "forbidden": 403,
    "invalid": 400,
    "not_found": 404,
    "conflict": 409,
    "rate_limited": 429,
    "too_large": 413,
    "unavailable": 503,
}


class AppError(Exception):
    """A refusal the client should see: a contract error code and a human message."""

    def __init__(self, code: ErrorCode, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        # For `rate_limited`: when to try again; HTTP sends it as `Retry-After`.
        self.retry_after_s = retry_after_s

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def as_ack(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.retry_after_s is not None:  # a client waits that long rather than parsing the message
            error["retry_after_s"] = self.retry_after_s
        return {"ok": False, "error": error}
