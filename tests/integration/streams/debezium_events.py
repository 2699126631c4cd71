"""Debezium change events as the JSON converter writes them (``schemas.enable=true``), for the tests."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
from typing import Any

ROW_FIELDS = [
    {"type": "int32", "optional": False, "field": "id"},
    {"type": "string", "optional": True, "field": "customer"},
    {"type": "bytes", "optional": True, "name": "org.apache.kafka.connect.data.Decimal",
     "parameters": {"scale": "2", "connect.decimal.precision": "12"}, "field": "amount"},
    {"type": "int64", "optional": True, "name": "io.debezium.time.MicroTimestamp", "field": "placed_at"},
    {"type": "string", "optional": True, "name": "io.debezium.time.ZonedTimestamp", "field": "paid_at"},
    {"type": "int32", "optional": True, "name": "io.debezium.time.Date", "field": "ship_on"},
]


def encode_decimal(value: str, scale: int = 2) -> str:
    unscaled = int(decimal.Decimal(value).scaleb(scale))
    return base64.b64encode(unscaled.to_bytes((unscaled.bit_length() + 8) // 8 or 1, "big", signed=True)).decode()


def row(i: int, customer: str, amount: str) -> dict[str, Any]:
    placed = dt.datetime(2024, 3, 1, 9, 30, 0, 123456) + dt.timedelta(days=i)
    micros = (placed - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    return {"id": i, "customer": customer, "amount": encode_decimal(amount), "placed_at": micros,
            "paid_at": f"2024-03-0{i}T10:00:00+01:00", "ship_on": (dt.date(2024, 4, i) - dt.date(1970, 1, 1)).days}


def event(op: str, before: dict[str, Any] | None, after: dict[str, Any] | None, ts_ms: int) -> bytes:
    struct = {"type": "struct", "fields": ROW_FIELDS, "optional": True}
    schema = {"type": "struct", "name": "dbserver.shop.orders.Envelope", "fields": [
        {**struct, "field": "before"}, {**struct, "field": "after"},
        {"type": "struct", "fields": [], "optional": False, "field": "source"},
        {"type": "string", "optional": False, "field": "op"},
        {"type": "int64", "optional": True, "field": "ts_ms"},
    ]}
    payload = {"before": before, "after": after, "source": {"ts_ms": ts_ms, "db": "shop", "table": "orders",
                                                            "snapshot": "true" if op == "r" else "false"},
               "op": op, "ts_ms": ts_ms + 5}
    return json.dumps({"schema": schema, "payload": payload}).encode()


def key(i: int) -> bytes:
    return json.dumps({"schema": {"type": "struct", "fields": [{"type": "int32", "optional": False, "field": "id"}]},
                       "payload": {"id": i}}).encode()
