"""Pieces of the stream/API sources that need no server: JSON values to typed columns (both paths agree),
JSONPath record paths, the Link header, Debezium's encoded types, config validation."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json

import pyarrow as pa
import pytest
from pydantic import ValidationError

from lakeforge.sources.declared import declared_columns
from lakeforge.sources.http import jsonpath
from lakeforge.sources.http.client import link_next, safe_url, with_params
from lakeforge.sources.json_values import fast_batch, parse_objects, to_batch
from lakeforge.sources.kafka.debezium import connect_type, decode

COLUMNS = declared_columns({"amount": "decimal(10,2)", "at": "timestamp", "day": "date"})


def _slow(values: list[bytes]) -> tuple[pa.RecordBatch, dict[int, str]]:
    rows, refused = parse_objects(values)
    parsed = to_batch(rows, COLUMNS, refused)
    return parsed.batch, parsed.refused


def test_fast_and_per_value_paths_give_the_same_typed_batch() -> None:
    values = [json.dumps({"id": i, "amount": f"{i}.5", "at": "2024-01-02T03:04:05+02:00", "day": "2024-02-29",
                          "score": i / 2, "name": f"n{i}", "ok": i % 2 == 0, "none": None}).encode()
              for i in range(5)]
    fast = fast_batch(values, COLUMNS)
    slow, refused = _slow(values)
    assert fast is not None and not refused
    assert fast.schema == slow.schema and fast.to_pylist() == slow.to_pylist()
    assert dict(zip(fast.schema.names, fast.schema.types, strict=True)) == {
        "amount": pa.decimal128(10, 2), "at": pa.timestamp("us", tz="UTC"), "day": pa.date32(), "id": pa.int64(),
        "score": pa.float64(), "name": pa.string(), "ok": pa.bool_(), "none": pa.string(),
    }
    row = fast.to_pylist()[3]
    assert row["amount"] == decimal.Decimal("3.50") and row["at"] == dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b'{"amount": "1.005"}', "column 'amount': 1.005 has more than 2 decimal places (decimal(10,2))"),
        (b'{"amount": 123456789.5}', "column 'amount': 123456789.5 does not fit decimal(10,2)"),
        (b'{"at": "later"}', "column 'at': \"later\" is not an ISO 8601 timestamp"),
        (b'{"day": 5}', "column 'day': 5 is not a date (YYYY-MM-DD)"),
        (b"[1]", "not a JSON object: a list"),
        (b"{", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ],
)
def test_a_value_that_does_not_fit_is_refused_alone_with_its_reason(value: bytes, reason: str) -> None:
    good = b'{"id": 1, "amount": "2.25"}'
    assert fast_batch([good, value], COLUMNS) is None  # the per-value path names the refused value
    batch, refused = _slow([good, value])
    assert refused == {1: reason}
    assert batch.num_rows == 1 and batch.to_pylist()[0]["amount"] == decimal.Decimal("2.25")


def test_inferred_kinds_and_exact_numbers() -> None:
    first, second = b'{"a": 1, "b": 1, "c": {"x": [1, 2.50]}, "d": "t"}', b'{"a": 2, "b": 2.5, "c": 3, "d": 7}'
    batch, refused = _slow([first, second])
    assert not refused
    assert batch.schema.field("a").type == pa.int64() and batch.schema.field("b").type == pa.float64()
    assert batch.column("c").to_pylist() == ['{"x":[1,2.50]}', "3"]  # JSON text, digits as written
    assert batch.column("d").to_pylist() == ["t", "7"]


def test_jsonpath_subset() -> None:
    doc = {"data": [{"id": 1}, {"id": 2}], "meta": {"next": None, "a b": [5, 6]}}
    assert list(jsonpath.find(doc, jsonpath.parse("$.data[*].id"))) == [1, 2]
    assert jsonpath.first(doc, jsonpath.parse("$.meta['a b'][-1]")) == 6
    assert jsonpath.first(doc, jsonpath.parse("$.meta.missing")) is None
    with pytest.raises(ValueError, match=r"supported: \$, .name"):
        jsonpath.parse("$.data[?(@.id > 1)]")


def test_link_header_and_urls() -> None:
    headers = {"Link": '<https://api.example/r?page=1>; rel="first", <https://api.example/r?page=3>; rel="next"'}
    assert link_next(headers) == "https://api.example/r?page=3"
    assert link_next({"link": "<https://x/a>; rel=prev"}) is None
    assert with_params("https://x/a?page=2&q=1", {"page": "3"}) == "https://x/a?q=1&page=3"
    assert safe_url("https://user:pw@x.example:8443/a?key=secret") == "https://x.example/a (port 8443)"


def test_debezium_types_decode_exactly() -> None:
    dec = {"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
           "parameters": {"scale": "3", "connect.decimal.precision": "9"}}
    raw = base64.b64encode((-1234567).to_bytes(4, "big", signed=True)).decode()
    assert connect_type(dec) == pa.decimal128(9, 3) and decode(raw, dec) == decimal.Decimal("-1234.567")
    micro = {"type": "int64", "name": "io.debezium.time.MicroTimestamp"}
    assert connect_type(micro) == pa.timestamp("us")
    assert decode(1_700_000_000_123_456, micro) == dt.datetime(2023, 11, 14, 22, 13, 20, 123456)
    zoned = {"type": "string", "name": "io.debezium.time.ZonedTimestamp"}
    assert decode("2024-01-01T10:00:00+02:00", zoned) == dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC)
    assert decode(19_723, {"type": "int32", "name": "io.debezium.time.Date"}) == dt.date(2024, 1, 1)
    assert connect_type({"type": "string", "name": "io.debezium.data.Json"}) == pa.string()


def test_configs_refuse_mistakes_and_keep_secrets() -> None:
    from lakeforge.sources.http.config import HttpConfig
    from lakeforge.sources.kafka.config import KafkaConfig

    with pytest.raises(ValidationError, match="choose exactly one of next, link, page, offset, cursor"):
        HttpConfig.model_validate({"type": "http", "url": "https://x", "paginate": {"next": "$.n", "link": True}})
    cfg = HttpConfig.model_validate({"type": "http", "url": "https://x", "auth": {"bearer": "s3cr3t/tok"}})
    assert "s3cr3t" not in repr(cfg) and cfg.secret_values() == ["s3cr3t/tok", "s3cr3t%2Ftok"]
    assert cfg.defaults.mode == "full"
    with pytest.raises(ValidationError, match="use sasl_password"):
        KafkaConfig.model_validate({"type": "kafka", "brokers": "b:9092", "topics": ["t"],
                                    "options": {"sasl.password": "x"}})
    assert KafkaConfig.model_validate({"type": "kafka", "brokers": "b", "topics": ["t"], "format": "debezium"}
                                      ).defaults.mode == "cdc"
