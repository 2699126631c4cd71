"""The stream part of `make demo`: events published to NATS JetStream land in bronze and are counted in gold.

Starts a private ``nats-server -js`` on a free loopback port (``tests/stream_servers.py``), so nothing is
left in the machine's own NATS, and a project in demo/stream_project:

1. publishes 600 shop events (view/cart/buy, with a decimal amount and a UTC time) to the stream
   ``DEMO_EVENTS``, and three malformed ones;
2. ``lakeforge run``: the events land in ``bronze.events`` (the stream sequence committed with them, the
   consumer acknowledged after the commit), the malformed ones in ``quarantine.events`` with the reason;
3. ``lakeforge build``: ``gold.event_counts`` counts events and sums amounts per kind;
4. publishes 150 more, runs and builds again: only the new events are read;
5. checks gold against what was published; exits 1 if anything differs.
"""

from __future__ import annotations

import decimal
import json
import os
import shutil
import sys
from pathlib import Path

import lakeforge

HERE = Path(__file__).resolve().parent
ROOT = Path(lakeforge.__file__).resolve().parents[2]
WORK = HERE / "stream_project"
sys.path.insert(0, str(ROOT))

from tests.stream_servers import nats_publish, nats_server  # noqa: E402

STREAM = "DEMO_EVENTS"
KINDS = ("view", "cart", "buy")
GOLD = """/* lakeforge
description: Shop events from NATS JetStream (bronze.events) counted per kind.
checks:
  - {type: unique, column: kind}
*/
select kind, count(*)::bigint as events, sum(amount)::decimal(14, 2) as amount
from bronze.events
group by kind
"""


def events(first: int, last: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(first, last):
        kind = KINDS[i % 3]
        body = {"id": i, "kind": kind, "amount": f"{i % 50}.{i % 100:02d}", "at": f"2024-06-01T12:{i % 60:02d}:00Z"}
        out.append((f"demo.{kind}", json.dumps(body).encode()))
    return out


def expected(last: int) -> dict[str, tuple[int, decimal.Decimal]]:
    totals: dict[str, tuple[int, decimal.Decimal]] = {}
    for _, raw in events(0, last):
        e = json.loads(raw)
        count, amount = totals.get(e["kind"], (0, decimal.Decimal(0)))
        totals[e["kind"]] = (count + 1, amount + decimal.Decimal(e["amount"]))
    return totals


def own_lake() -> None:
    """A lake of its own beside the main demo's when the environment points the demo elsewhere (Iceberg on
    S3, docs/lake.md): a folder and catalog namespaces under it, so its tables and quarantine stay apart."""
    if path := os.environ.get("LAKEFORGE__LAKE__PATH"):
        os.environ["LAKEFORGE__LAKE__PATH"] = path.rstrip("/") + "/streams"
    if os.environ.get("LAKEFORGE__LAKE__CATALOG__TYPE"):
        prefix = os.environ.get("LAKEFORGE__LAKE__CATALOG__NAMESPACE_PREFIX", "")
        os.environ["LAKEFORGE__LAKE__CATALOG__NAMESPACE_PREFIX"] = prefix + "streams_"


def main() -> int:
    saved = dict(os.environ)
    try:
        return _main()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _main() -> int:
    from lakeforge import Project
    from lakeforge.cli.common import print_rows

    print("\n== streams: NATS JetStream events -> bronze.events -> gold.event_counts ==", flush=True)
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "models" / "gold").mkdir(parents=True)
    (WORK / "models" / "gold" / "event_counts.sql").write_text(GOLD)
    with nats_server() as url:
        (WORK / "lakeforge.yml").write_text(
            "# Written by demo/stream_demo.py: a private nats-server, started for the demo.\n"
            "lake: {path: ./lakehouse}\n"
            "sources:\n"
            f"  events: {{type: nats, url: '{url}', stream: {STREAM}, "
            "schema: {amount: 'decimal(8,2)', at: timestamp}}\n"
        )
        nats_publish(url, STREAM, ["demo.>"], [*events(0, 600), ("demo.view", b"{not json"),
                                                ("demo.buy", b'{"id": -1, "kind": "buy", "amount": "lots"}'),
                                                ("demo.cart", b'{"id": -2, "kind": "cart", "at": "noon"}')])
        own_lake()
        project = Project(WORK)
        code = 0
        for step, last in ((1, 600), (2, 750)):
            if step == 2:
                nats_publish(url, STREAM, [], events(600, 750))
            run = project.run()
            build = project.build()
            loaded = run.tables[0]
            print(f"run {step}: {loaded.table} {loaded.status}, {loaded.rows} new events; build ok: {build.ok}")
            if loaded.error:
                print(f"  {loaded.error}")
            counted = project.sql("select * from gold.event_counts").to_pylist()
            gold = {r["kind"]: (r["events"], r["amount"]) for r in counted}
            want = expected(last)
            print_rows(f"gold.event_counts after run {step}", ["kind", "events", "amount", "published", "equal"],
                       [[k, gold.get(k, (0, 0))[0], f"{gold.get(k, (0, 0))[1]:,.2f}", want[k][0],
                         "yes" if gold.get(k) == want[k] else "NO"] for k in KINDS])
            if gold != want or not run.ok or not build.ok:
                print("MISMATCH: gold differs from the events published", file=sys.stderr)
                code = 1
        bad = project.quarantine()
        print_rows("quarantine.events", ["sequence", "reason"], [[r["offset"], r["reason"]] for r in bad])
        if len(bad) != 3:
            code = 1
        position = project.lake.checkpoint("bronze.events")
        print(f"stream position committed with the data: {position.position if position else None}")
    return code


if __name__ == "__main__":
    sys.exit(main())
