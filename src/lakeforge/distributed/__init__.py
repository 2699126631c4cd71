"""Distributed extraction: a large table read by range tasks on other processes or machines (Ray).

::

    extract.py    the driver: one consistent source snapshot, range tasks, ONE table commit of their files
    ranges.py     primary-key ranges read inside the snapshot
    snapshot.py   Snapshot: the seam a source's consistent view is shared through (+ SNAPSHOTS registry)
    postgres.py   PostgreSQL: pg_export_snapshot() / SET TRANSACTION SNAPSHOT
    mysql.py      MariaDB/MySQL: FLUSH TABLES WITH READ LOCK while every task opens its consistent snapshot
    task.py       what runs on a worker: stream one range into Parquet files in the lake's storage
    executor.py   Executor: where tasks run (ThreadExecutor in this process, RayExecutor on a Ray cluster)

The driver holds only file lists; a task holds one batch (and one Parquet row group) at a time. Files of a
failed or killed task attempt are never committed (and are deleted after the commit or the failure).
See docs/scale-out.md.
"""
