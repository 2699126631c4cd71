"""Run one contender in this (fresh) process: ``python -m bench.worker '<job json>'``; prints a JSON line."""

from __future__ import annotations

import json
import sys

from bench.contenders import Job, run


def main() -> None:
    job = Job(**json.loads(sys.argv[1]))
    result = run(job)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
