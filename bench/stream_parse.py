"""``python -m bench.stream_parse --before DIR/src``: CPU per record of the NATS per-chunk work (parse
5,000-message socket buffers with ``sources/nats/pull.py``, type the JSON with ``fast_batch``, build the
metadata columns) of this tree and of another lakeforge ``src`` tree, alternated in one process on the same
200,000 messages (the batches must be equal). No server: the socket buffers are built here."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _frames(n: int, per: int) -> list[bytes]:
    from bench.streams import message

    frames = []
    for i in range(n):
        m = message(i)
        ack = b"$JS.ACK.S1.dur.1.%d.%d.%d.%d" % (i + 1, i + 1, 1_764_780_000_000_000_000 + i, n - 1 - i)
        frames.append(b"MSG S1.ev 1 %s %d\r\n%s\r\n" % (ack, len(m), m))
    return [b"".join(frames[i : i + per]) for i in range(0, n, per)]


def _load(src: str) -> tuple[Any, ...]:
    for name in [k for k in sys.modules if k == "lakeforge" or k.startswith("lakeforge.")]:
        del sys.modules[name]
    sys.path.insert(0, src)
    try:
        pull = importlib.import_module("lakeforge.sources.nats.pull")
        source = importlib.import_module("lakeforge.sources.nats.source")
        values = importlib.import_module("lakeforge.sources.json_values")
        declared = importlib.import_module("lakeforge.sources.declared")
    finally:
        sys.path.remove(src)
    return pull, source, values, declared.declared_columns({"amount": "decimal(12,2)", "at": "timestamp"})


def _work(mods: tuple[Any, ...], chunks: list[bytes], per: int) -> list[Any]:
    pull, source, values, columns = mods
    out = []
    for chunk in chunks:
        sock = object.__new__(pull.PullSocket)
        sock._buf, sock._pong, sock.source, sock.url = bytearray(chunk), 0, "bench", "nats://bench"
        got = pull.Pulled()
        sock._parse(got, per)
        out.append(values.with_columns(values.fast_batch(got.data, columns), source.message_columns(got)))
    return out


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.stream_parse", description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="another lakeforge src folder")
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    per = 5000
    chunks = _frames(args.records, per)
    trees = {"before": _load(args.before), "after": _load(str(ROOT / "src"))}
    cpu: dict[str, list[float]] = {name: [] for name in trees}
    outs: dict[str, list[Any]] = {}
    for _ in range(args.repeat):
        for name, mods in trees.items():
            start = time.process_time()
            outs[name] = _work(mods, chunks, per)
            cpu[name].append(time.process_time() - start)
    same = all(a.equals(b) for a, b in zip(outs["before"], outs["after"], strict=True))
    for name, times in cpu.items():
        times.sort()
        us = [round(t / args.records * 1e6, 2) for t in (times[0], times[len(times) // 2], times[-1])]
        print(f"{name}: CPU us/record min/median/max {us}")
    print(f"batches equal: {same}; load average {os.getloadavg()[0]:.1f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
