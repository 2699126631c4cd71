"""HTML for the web app, rendered on the server: every number is in the page as text (and each chart's data as
Plotly JSON), so the page works without any request beyond ``/static/plotly.min.js``."""

from __future__ import annotations

import datetime as dt
import decimal
import html
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.serve.web.dashboards import Chart, Filter, Kpi

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1f2933}
header{background:#1f2933;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:baseline}
header a{color:#cbd2d9;text-decoration:none} header h1{font-size:20px;margin:0}
main{padding:16px 24px} .grid{display:grid;grid-template-columns:repeat(3,1fr);gap:16px}
.tile{background:#fff;border-radius:6px;padding:12px 16px;box-shadow:0 1px 2px rgba(0,0,0,.1);overflow:auto}
.w2{grid-column:span 2} .w3{grid-column:span 3} .tile h2{font-size:14px;margin:0 0 8px;color:#52606d}
.kpi-value{font-size:32px;font-weight:600} .tile-error{color:#b91c1c;font-family:monospace;white-space:pre-wrap}
table.data{border-collapse:collapse;font-size:13px;width:100%} table.data td,table.data th{padding:4px 8px;
border-bottom:1px solid #e4e7eb;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
form.filters{margin-bottom:16px;display:flex;gap:16px;align-items:end} .muted{color:#7b8794;font-size:12px}
.ok{color:#047857} .bad{color:#b91c1c} .warn{color:#b45309}
"""


def page(title: str, body: str, *, nav: list[tuple[str, str]], charts: bool = False) -> str:
    links = " ".join(f'<a href="{html.escape(href)}">{html.escape(text)}</a>' for text, href in nav)
    script = '<script src="/static/plotly.min.js"></script>' if charts else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)} - lakeforge</title>"
        f"<style>{STYLE}</style>{script}</head><body><header><h1>{html.escape(title)}</h1>{links}</header>"
        f"<main>{body}</main>{_plot_script() if charts else ''}</body></html>"
    )


def _plot_script() -> str:
    return (
        "<script>for (const el of document.querySelectorAll('.chart')) {"
        "const fig = JSON.parse(document.getElementById(el.id + '-data').textContent);"
        "Plotly.newPlot(el, fig.data, fig.layout, {displaylogo: false, responsive: true});}</script>"
    )


def text(value: Any) -> str:
    """A value as shown in a table cell: exact (every decimal digit), NULL as empty."""
    if value is None:
        return ""
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    return str(value)


def tile(title: str, inner: str, width: int, tile_id: str) -> str:
    cls = f" w{width}" if width > 1 else ""
    return f'<section class="tile{cls}" id="{tile_id}"><h2>{html.escape(title)}</h2>{inner}</section>'


def error(message: str) -> str:
    return f'<div class="tile-error">{html.escape(message)}</div>'


def kpi(spec: Kpi, table: pa.Table) -> str:
    column = spec.column or (table.column_names[0] if table.num_columns else "")
    value = table.column(column)[0].as_py() if table.num_rows else None
    if value is None:
        shown = "-"
    elif spec.format == "money" and isinstance(value, int | float | decimal.Decimal):
        shown = f"{value:,.2f}"
    elif spec.format == "percent" and isinstance(value, int | float | decimal.Decimal):
        shown = f"{value * 100:,.1f} %"
    elif isinstance(value, int | decimal.Decimal):
        shown = f"{value:,}"
    else:
        shown = text(value)
    return f'<div class="kpi-value" data-value="{html.escape(text(value))}">{html.escape(shown)}</div>'


def data_table(table: pa.Table, limit: int, csv_href: str | None) -> str:
    rows = table.slice(0, limit).to_pylist()
    numeric = {f.name for f in table.schema if _is_number(f.type)}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.column_names)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if c in numeric else ''}>{html.escape(text(r[c]))}</td>" for c in table.column_names
        )
        + "</tr>"
        for r in rows
    )
    more = f'<p class="muted">{limit} of {table.num_rows} rows shown</p>' if table.num_rows > limit else ""
    export = f'<p><a class="csv" href="{html.escape(csv_href)}">Download CSV</a></p>' if csv_href else ""
    return f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}{export}'


def _is_number(t: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)  # plotting only: tables and KPIs show the exact value
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    return value


def chart(spec: Chart, table: pa.Table, chart_id: str) -> str:
    rows = table.to_pylist()
    traces: list[dict[str, Any]] = []
    if spec.chart == "pie":
        traces.append(
            {"type": "pie", "labels": [_plain(r[spec.x]) for r in rows], "values": [_plain(r[spec.y[0]]) for r in rows]}
        )
    elif spec.color:
        groups: dict[Any, list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(r[spec.color], []).append(r)
        traces = [_trace(spec, str(key), group, spec.y[0]) for key, group in groups.items()]
    else:
        traces = [_trace(spec, y, rows, y) for y in spec.y]
    layout = {
        "margin": {"l": 60, "r": 20, "t": 10, "b": 50},
        "height": 320,
        "barmode": "stack" if spec.stacked else "group",
        "xaxis": {"title": {"text": spec.x}},
        "legend": {"orientation": "h"},
    }
    figure = json.dumps({"data": traces, "layout": layout}).replace("</", "<\\/")
    return (
        f'<div class="chart" id="{chart_id}"></div>'
        f'<script type="application/json" id="{chart_id}-data">{figure}</script>'
    )


def _trace(spec: Chart, name: str, rows: list[dict[str, Any]], y: str) -> dict[str, Any]:
    trace: dict[str, Any] = {"name": name, "x": [_plain(r[spec.x]) for r in rows], "y": [_plain(r[y]) for r in rows]}
    if spec.chart == "bar":
        trace["type"] = "bar"
    else:
        trace["type"] = "scatter"
        trace["mode"] = "markers" if spec.chart == "scatter" else "lines+markers"
        if spec.chart == "area":
            trace["stackgroup" if spec.stacked else "fill"] = "one" if spec.stacked else "tozeroy"
    return trace


def filters_form(filters: list[Filter], options: dict[str, list[Any]], values: dict[str, Any]) -> str:
    if not filters:
        return ""
    fields = []
    for flt in filters:
        current = values.get(flt.name)
        opts = "".join(
            f'<option value="{html.escape(str(o))}"{" selected" if current is not None and o == current else ""}>'
            f"{html.escape(str(o))}</option>"
            for o in options.get(flt.name, [])
        )
        fields.append(
            f'<label>{html.escape(flt.label or flt.name)}<br><select name="{flt.name}">'
            f'<option value="">(all)</option>{opts}</select></label>'
        )
    return f'<form class="filters" method="get">{"".join(fields)}<button type="submit">Apply</button></form>'


def query_string(values: dict[str, Any]) -> str:
    present = {k: str(v) for k, v in values.items() if v is not None}
    return ("?" + urlencode(present)) if present else ""
