"""Where range tasks run: the seam between the driver and a cluster.

- :class:`ThreadExecutor`: threads of this process (the drivers release the GIL while fetching); no cluster,
  the same tasks, files and commit. Used by tests of the commit path and as the benchmark's local contender.
- :class:`RayExecutor`: tasks on a Ray cluster (``engine: {type: ray, address}``); Ray retries a task whose
  worker died and the driver only ever receives file lists.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from lakeforge.distributed.task import RangeResult, RangeTask, RetryableRangeFailed, run_range

if TYPE_CHECKING:
    from lakeforge.config.engine import RayEngine


class Running(ABC):
    """Tasks submitted together."""

    @abstractmethod
    def finished(self) -> set[int]:
        """Indexes of the tasks that have ended (without waiting)."""

    @abstractmethod
    def results(self) -> Iterator[RangeResult]:
        """Each task's result as it completes; raises the first failure (after the executor's retries)."""

    @abstractmethod
    def cancel(self) -> None: ...


class Executor(ABC):
    name: str

    @abstractmethod
    def start(self, tasks: Sequence[RangeTask], *, retries: int) -> Running: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the cluster connection."""


# -- in this process ------------------------------------------------------------------------------------
class ThreadExecutor(Executor):
    name = "threads"

    def __init__(self, workers: int = 4) -> None:
        self.workers = workers

    def start(self, tasks: Sequence[RangeTask], *, retries: int) -> Running:
        return _ThreadsRunning(tasks, self.workers, retries)


def _with_retries(task: RangeTask, retries: int) -> RangeResult:
    for attempt in range(retries + 1):
        try:
            return run_range(task)
        except RetryableRangeFailed:
            if attempt == retries:
                raise
    raise AssertionError("unreachable")


class _ThreadsRunning(Running):
    def __init__(self, tasks: Sequence[RangeTask], workers: int, retries: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(tasks))), thread_name_prefix="lf-range")
        self.futures: dict[Future[RangeResult], int] = {
            self.pool.submit(_with_retries, t, retries): t.index for t in tasks
        }

    def finished(self) -> set[int]:
        return {i for f, i in self.futures.items() if f.done()}

    def results(self) -> Iterator[RangeResult]:
        from concurrent.futures import FIRST_COMPLETED, wait

        from lakeforge import interrupt

        pending = set(self.futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                interrupt.check()
                for future in done:
                    yield future.result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def cancel(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# -- on a Ray cluster -----------------------------------------------------------------------------------
class RayExecutor(Executor):
    name = "ray"

    def __init__(self, config: RayEngine) -> None:
        self.config = config
        self._connected = False

    def _connect(self) -> Any:
        from lakeforge.errors import LakeforgeError, MissingExtraError

        try:
            import ray
        except ImportError:
            raise MissingExtraError("ray", "scale") from None
        if not ray.is_initialized():
            try:
                ray.init(
                    address=self.config.address,
                    namespace=self.config.namespace,
                    log_to_driver=False,
                )
            except Exception as exc:  # ConnectionError, RuntimeError: which cluster, and why
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise LakeforgeError(
                    f"engine: cannot reach the Ray cluster at {self.config.address}: {first}", transient=True
                ) from None
            self._connected = True
        return ray

    def start(self, tasks: Sequence[RangeTask], *, retries: int) -> Running:
        ray = self._connect()
        options: dict[str, Any] = {
            "num_cpus": self.config.task_cpus,
            "max_retries": retries,
            "retry_exceptions": [RetryableRangeFailed] if retries else False,
        }
        hooks = {k: v for k, v in os.environ.items() if k.startswith("LAKEFORGE_TEST_")}
        if hooks:  # crash-test hooks follow the run to its workers
            options["runtime_env"] = {"env_vars": hooks}
        remote = ray.remote(run_range).options(**options)
        return _RayRunning(ray, {remote.remote(t): t.index for t in tasks})

    def close(self) -> None:
        if self._connected:
            import ray

            ray.shutdown()
            self._connected = False


class _RayRunning(Running):
    def __init__(self, ray: Any, refs: dict[Any, int]) -> None:
        self.ray = ray
        self.refs = refs

    def finished(self) -> set[int]:
        ready, _ = self.ray.wait(list(self.refs), num_returns=len(self.refs), timeout=0, fetch_local=False)
        return {self.refs[r] for r in ready}

    def results(self) -> Iterator[RangeResult]:
        from lakeforge import interrupt

        pending = list(self.refs)
        while pending:
            ready, pending = self.ray.wait(pending, num_returns=1, timeout=0.2)
            interrupt.check()
            for ref in ready:
                yield self._get(ref)

    def _get(self, ref: Any) -> RangeResult:
        from ray.exceptions import RayTaskError, WorkerCrashedError

        from lakeforge.distributed.task import RangeFailed
        from lakeforge.errors import LakeforgeError

        try:
            result: RangeResult = self.ray.get(ref)
            return result
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, RangeFailed):
                raise cause from None
            raise LakeforgeError(f"range task {self.refs[ref]} failed on the cluster: {cause or exc}") from None
        except WorkerCrashedError:
            raise LakeforgeError(
                f"range task {self.refs[ref]}: its worker died on every attempt (out of memory? killed?)",
                transient=True,
            ) from None

    def cancel(self) -> None:
        import contextlib

        for ref in self.refs:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
