"""``type: http``: records of a paginated JSON API.

Each page is a chunk with a position, so a long read commits as it goes and a crash resumes at the page
after the last commit: ``{"since": <incremental value the read started from>, "high": <largest value
seen>, "next": [url, params] of the next page}``; the read's last chunk has ``{"since": <largest value>}``
and the next run asks the API only for records past it (``incremental.param``). Records at or below
``since`` are dropped here too, whatever the API returns, so each loads once.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urljoin

from lakeforge.errors import SourceError
from lakeforge.sources.http.config import HttpConfig
from lakeforge.sources.records import BadRecord, Chunk, ReadRequest, RecordSource

if TYPE_CHECKING:
    from lakeforge.sources.base import TablePlan
    from lakeforge.sources.http.client import JsonClient, Page

Request = tuple[str, dict[str, str]]


class HttpSource(RecordSource):
    type_name = "http"
    CONFIG: ClassVar[type[HttpConfig]] = HttpConfig
    config: HttpConfig

    def check(self) -> dict[str, str]:
        from lakeforge.sources.http.client import safe_url

        client = self._client()
        try:
            client.get(self.config.url, {})
        finally:
            client.close()
        return {"type": "http", "url": safe_url(self.config.url)}

    def _client(self) -> JsonClient:
        from lakeforge.sources.http.client import JsonClient, Retry

        cfg = self.config
        headers, params = dict(cfg.headers), {}
        auth = None
        if cfg.auth is not None:
            if cfg.auth.bearer is not None:
                headers["Authorization"] = f"Bearer {cfg.auth.bearer.get_secret_value()}"
            elif cfg.auth.api_key is not None:
                key = cfg.auth.api_key.get_secret_value()
                if cfg.auth.api_key_param:
                    params[cfg.auth.api_key_param] = key
                else:
                    headers[cfg.auth.api_key_header] = key
            elif cfg.auth.basic is not None:
                auth = (cfg.auth.basic.user, cfg.auth.basic.password.get_secret_value())
        retry = Retry(cfg.retries, cfg.backoff_seconds, cfg.max_wait_seconds)
        return JsonClient(
            self.name, headers=headers, params=params, auth=auth, timeout=cfg.timeout, retry=retry, scrub=self.scrub
        )

    def read(self, plan: TablePlan, request: ReadRequest) -> Iterator[Chunk]:
        from lakeforge.sources.http import jsonpath
        from lakeforge.sources.json_values import to_batch

        cfg = self.config
        since = request.position.get("since", cfg.incremental.initial if cfg.incremental else None)
        high = request.position.get("high", since)
        resume = request.position.get("next")
        first: Request = (str(resume[0]), dict(resume[1])) if resume else (cfg.url, self._first_params(since))
        steps = jsonpath.parse(cfg.records)
        client = self._client()
        try:
            page_request: Request | None = first
            while page_request is not None:
                page = client.get(*page_request)
                found = list(jsonpath.find(page.body, steps))
                records = found[0] if len(found) == 1 and isinstance(found[0], list) else found
                rows: list[dict[str, Any] | None] = []
                bad: list[BadRecord] = []
                for record in records:
                    if not isinstance(record, dict):
                        bad.append(
                            BadRecord(f"not a JSON object: a {type(record).__name__}", _text(record), file=page.url)
                        )
                        continue
                    value = record.get(cfg.incremental.field) if cfg.incremental else None
                    if cfg.incremental is not None and since is not None and value is not None and _le(value, since):
                        continue  # at or below what the lake has: loaded by an earlier run
                    if value is not None and (high is None or not _le(value, high)):
                        high = str(value) if isinstance(value, decimal.Decimal) else value
                    rows.append(record)
                parsed = to_batch(rows, plan.columns)
                for i, reason in sorted(parsed.refused.items()):
                    bad.append(BadRecord(reason, _text(rows[i]), file=page.url))
                page_request = self._next(page, page_request, len(records))
                position: dict[str, Any] = {"since": since, "high": high}
                if page_request is not None:
                    position["next"] = [page_request[0], page_request[1]]
                else:
                    position = {"since": high}
                yield Chunk(parsed.batch, bad, position)
        finally:
            if client.retries:
                self.retries = client.retries
            client.close()

    retries = 0
    """Retries the last read needed (rate limits, transient failures)."""

    def _first_params(self, since: Any) -> dict[str, str]:
        inc, paginate = self.config.incremental, self.config.paginate
        params = {inc.param: str(since)} if inc is not None and since is not None else {}
        if paginate is not None and paginate.page is not None:
            p = paginate.page
            params[p.param] = str(p.start)
            if p.size_param and p.size:
                params[p.size_param] = str(p.size)
        if paginate is not None and paginate.offset is not None:
            params[paginate.offset.param] = "0"
            params[paginate.offset.limit_param] = str(paginate.offset.limit)
        return params

    def _next(self, page: Page, current: Request, count: int) -> Request | None:
        from lakeforge.sources.http import jsonpath
        from lakeforge.sources.http.client import link_next

        paginate = self.config.paginate
        url, params = current
        if paginate is None:
            return None
        if paginate.next is not None:
            target = jsonpath.first(page.body, jsonpath.parse(paginate.next))
            return (urljoin(page.url, str(target)), {}) if target else None
        if paginate.link:
            target = link_next(page.headers)
            return (urljoin(page.url, target), {}) if target else None
        if paginate.cursor is not None:
            cursor = jsonpath.first(page.body, jsonpath.parse(paginate.cursor.path))
            if cursor in (None, "") or count == 0:
                return None
            return url, {**params, paginate.cursor.param: str(cursor)}
        if paginate.page is not None:
            p = paginate.page
            size = p.size
            if count == 0 or (size is not None and count < size):
                return None
            number = int(params.get(p.param, p.start)) + 1
            extra = {p.size_param: str(size)} if p.size_param and size else {}
            return url, {**params, p.param: str(number), **extra}
        if paginate.offset is not None:
            o = paginate.offset
            if count < o.limit:
                return None
            return url, {**params, o.param: str(int(params.get(o.param, 0)) + count), o.limit_param: str(o.limit)}
        raise SourceError(self.name, "paginate has no method")  # unreachable: the config needs one


def _le(value: Any, other: Any) -> bool:
    """``value <= other`` for numbers (exactly) and for text (ISO 8601 timestamps in one format compare as
    text)."""
    if isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool):
        try:
            return bool(decimal.Decimal(value) <= decimal.Decimal(str(other)))
        except decimal.InvalidOperation:
            return str(value) <= str(other)
    return str(value) <= str(other)


def _text(value: Any) -> str:
    import json

    return json.dumps(value, default=str)
