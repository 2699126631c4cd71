"""Options of an ``http`` source (a JSON API), validated when lakeforge.yml is read."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from lakeforge.config.models import Strict
from lakeforge.sources.records import RecordSourceConfig


class PageNumbers(Strict):
    param: str = "page"
    """Query parameter carrying the page number."""
    start: int = 1
    size_param: str | None = None
    """Query parameter carrying the page size (unset: the API's default; a short page then still ends)."""
    size: int | None = Field(default=None, gt=0)


class Offsets(Strict):
    param: str = "offset"
    limit_param: str = "limit"
    limit: int = Field(default=100, gt=0)


class Cursor(Strict):
    path: str
    """JSONPath of the next cursor in the body, e.g. ``$.meta.next_cursor``; missing/null/empty ends."""
    param: str = "cursor"
    """Query parameter the cursor is sent in."""


class Paginate(Strict):
    """Exactly one way to find the next page."""

    next: str | None = None
    """JSONPath of the next page's URL in the body (``$.next``); absolute or relative to the page."""
    link: bool = False
    """Follow the ``Link`` header's ``rel="next"`` (RFC 8288, GitHub-style)."""
    page: PageNumbers | None = None
    offset: Offsets | None = None
    cursor: Cursor | None = None

    @model_validator(mode="after")
    def _one(self) -> Paginate:
        chosen = [k for k in ("next", "page", "offset", "cursor") if getattr(self, k) is not None]
        chosen += ["link"] if self.link else []
        if len(chosen) != 1:
            raise ValueError(
                f"paginate: choose exactly one of next, link, page, offset, cursor (got {', '.join(chosen) or 'none'})"
            )
        return self


class Basic(Strict):
    user: str
    password: SecretStr


class Auth(Strict):
    """One of: a bearer token, an API key (header or query parameter), HTTP basic. Write secrets as
    ``${ENV_VAR}``: they are ``SecretStr``, never printed, scrubbed from messages."""

    bearer: SecretStr | None = None
    api_key: SecretStr | None = None
    api_key_header: str = "X-API-Key"
    api_key_param: str | None = None
    """Send the API key as this query parameter instead of a header."""
    basic: Basic | None = None

    @model_validator(mode="after")
    def _one(self) -> Auth:
        chosen = [k for k in ("bearer", "api_key", "basic") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(f"auth: choose exactly one of bearer, api_key, basic (got {', '.join(chosen) or 'none'})")
        return self


class Incremental(Strict):
    field: str
    """Record field that grows (``updated_at``, ``id``); records at or below the committed value are
    skipped, so each record loads once."""
    param: str
    """Query parameter that asks the API for records past a value (``since``)."""
    initial: str | None = None
    """Value sent on the first run (unset: the parameter is left out)."""


class HttpConfig(RecordSourceConfig):
    type: Literal["http"]
    url: str
    """First page (``https://api.example/rates``)."""
    params: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    records: str = "$"
    """JSONPath of the records in a page (``$.data[*]``); a list found there yields its elements."""
    paginate: Paginate | None = None
    """Unset: one page."""
    auth: Auth | None = None
    incremental: Incremental | None = None
    """Unset: every run reads everything and replaces the table (``mode: full``)."""
    timeout: float = Field(default=30.0, gt=0)
    retries: int = Field(default=5, ge=0)
    """Retries of a 429, 5xx, broken body or connection error (each request)."""
    backoff_seconds: float = Field(default=0.5, ge=0)
    """Wait before the first retry (doubling), unless ``Retry-After`` says otherwise."""
    max_wait_seconds: float = Field(default=60.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _default_mode(cls, data: Any) -> Any:
        """Without ``incremental`` a run reads everything: replace (``full``) rather than append again."""
        if isinstance(data, dict) and not data.get("incremental") and "defaults" not in data:
            return {**data, "defaults": {"mode": "full"}}
        return data

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"'{value}' is not an http(s) URL")
        return value

    @field_validator("records")
    @classmethod
    def _path(cls, value: str) -> str:
        from lakeforge.sources.http.jsonpath import parse

        parse(value)
        return value
