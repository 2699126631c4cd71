"""GET JSON pages with auth, retries and pagination (httpx).

Retried with backoff: 429 (waiting what ``Retry-After`` says, in seconds or as an HTTP date, at most
``max_wait``), 500/502/503/504, connection errors and timeouts, and a body that is not JSON (a truncated
response). Anything else (401, 404, ...) fails at once. Messages name the URL without its query string
(an API key may travel there) and never carry a secret.
"""

from __future__ import annotations

import datetime as dt
import decimal
import email.utils
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from lakeforge.errors import SourceError

if TYPE_CHECKING:
    import httpx

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Retry:
    attempts: int = 5
    """Retries of one request (on top of the first try)."""
    backoff: float = 0.5
    """Seconds before the first retry; doubles each time."""
    max_wait: float = 60.0
    """Longest wait between tries (also caps ``Retry-After``)."""


@dataclass
class Page:
    url: str
    params: dict[str, str]
    body: Any
    headers: dict[str, str]


def safe_url(url: str) -> str:
    """``url`` without its query string and user info, for messages."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", "")) + (
        f" (port {parts.port})" if parts.port else ""
    )


class JsonClient:
    def __init__(
        self,
        source: str,
        *,
        headers: dict[str, str],
        params: dict[str, str],
        auth: tuple[str, str] | None,
        timeout: float,
        retry: Retry,
        scrub: Callable[[str], str],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.headers = headers
        self.params = params
        self.auth = auth
        self.timeout = timeout
        self.retry = retry
        self.scrub = scrub
        self.sleep = sleep
        self.retries = 0
        """Retries made so far (rate limits and transient failures)."""
        self._client: httpx.Client | None = None

    def _open(self) -> httpx.Client:
        if self._client is None:
            try:
                import httpx
            except ImportError as exc:
                from lakeforge.errors import MissingExtraError

                raise MissingExtraError("httpx", "streams") from exc
            self._client = httpx.Client(
                headers=self.headers, auth=self.auth, timeout=self.timeout, follow_redirects=True
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def get(self, url: str, params: dict[str, str]) -> Page:
        """GET ``url`` with the client's params and ``params``; the JSON body, retried as the module says."""
        import httpx

        client = self._open()
        merged = {**self.params, **params}
        url = with_params(url, merged)  # httpx's params= would replace a query the URL already has
        attempt = 0
        while True:
            wait: float | None
            try:
                response = client.get(url)
            except httpx.TransportError as exc:
                wait, why = self._backoff(attempt), f"{type(exc).__name__}: {self.scrub(str(exc))}"
            else:
                if response.status_code in RETRY_STATUS:
                    wait, why = self._wait_for(response, attempt), f"HTTP {response.status_code}"
                elif response.status_code >= 400:
                    raise SourceError(
                        self.source,
                        f"GET {safe_url(url)} answered HTTP {response.status_code} {response.reason_phrase}"
                        + (" (check the source's auth)" if response.status_code in (401, 403) else ""),
                    )
                else:
                    try:
                        body = json.loads(response.content, parse_float=decimal.Decimal)
                    except ValueError as exc:
                        wait, why = self._backoff(attempt), f"the body is not JSON ({exc})"
                    else:
                        return Page(str(response.url), merged, body, dict(response.headers))
            attempt += 1
            if attempt > self.retry.attempts:
                raise SourceError(
                    self.source,
                    f"GET {safe_url(url)} failed after {attempt} tries: {why}",
                    transient=True,
                )
            self.retries += 1
            self.sleep(wait)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.retry.backoff * 2**attempt, self.retry.max_wait))

    def _wait_for(self, response: httpx.Response, attempt: int) -> float:
        after = response.headers.get("Retry-After")
        if after is None:
            return self._backoff(attempt)
        after = after.strip()
        if after.isdigit():
            return min(float(after), self.retry.max_wait)
        try:
            when = email.utils.parsedate_to_datetime(after)
        except (TypeError, ValueError):
            return self._backoff(attempt)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return min(max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0), self.retry.max_wait)


def with_params(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` set in its query string (kept in order, replacing same-named ones)."""
    from urllib.parse import parse_qsl, urlencode

    if not params:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


def link_next(headers: dict[str, str]) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header (RFC 8288), or None."""
    value = next((v for k, v in headers.items() if k.lower() == "link"), None)
    if not value:
        return None
    for part in value.split(","):
        section = part.split(";")
        target = section[0].strip()
        rels = [s.strip() for s in section[1:]]
        if (
            target.startswith("<")
            and target.endswith(">")
            and any(r.replace(" ", "").lower() in ('rel="next"', "rel=next") for r in rels)
        ):
            return target[1:-1]
    return None


def pages(
    client: JsonClient, first: tuple[str, dict[str, str]], follow: Callable[[Page], tuple[str, dict[str, str]] | None]
) -> Iterator[Page]:
    """Every page from ``first``, asking ``follow`` for the next request after each."""
    request: tuple[str, dict[str, str]] | None = first
    while request is not None:
        page = client.get(*request)
        yield page
        request = follow(page)
