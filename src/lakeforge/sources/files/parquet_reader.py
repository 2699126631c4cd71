"""Parquet files, read in record batches (row groups are streamed, never the whole file)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from lakeforge.sources.files.csv_reader import Block

if TYPE_CHECKING:
    from lakeforge.lake.storage import Storage


def read_parquet(storage: Storage, relative: str, batch_size: int) -> Iterator[Block]:
    import pyarrow.parquet as pq

    fs, root = storage.filesystem()
    with fs.open_input_file(f"{root.rstrip('/')}/{relative}") as handle:
        parquet = pq.ParquetFile(handle)
        done = 0
        for batch in parquet.iter_batches(batch_size=batch_size):
            numbers = list(range(done + 1, done + batch.num_rows + 1))
            done += batch.num_rows
            yield Block(batch, numbers, [0] * len(numbers), [], done)
