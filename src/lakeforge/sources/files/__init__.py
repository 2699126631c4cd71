"""``type: files``: CSV, JSON (lines or arrays) and Parquet files from a folder or an ``s3://`` prefix."""
