"""Where a lake's files live: a local folder or an ``s3://bucket/prefix`` on any S3-compatible store.

One :class:`Storage` turns ``lake.storage`` into what each library wants (delta-rs storage options, an Arrow
filesystem, PyIceberg FileIO properties, a boto3 client for the run lock). Secrets stay ``SecretStr`` until
handed to a client, and never appear in a message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeforge.config.models import StorageConfig

if TYPE_CHECKING:
    import pyarrow.fs as pafs


@dataclass(frozen=True)
class Storage:
    root: str
    """Local folder (absolute) or ``s3://bucket/prefix``."""
    config: StorageConfig
    extra_options: dict[str, str] | None = None
    """``lake.storage_options``: raw delta-rs options, applied last."""

    @property
    def is_local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file://")

    @property
    def scheme(self) -> str:
        return self.root.split("://", 1)[0] if "://" in self.root else "file"

    def join(self, *parts: str) -> str:
        if self.is_local:
            return str(Path(self.root.removeprefix("file://"), *parts))
        return "/".join([self.root.rstrip("/"), *parts])

    def bucket_and_key(self, *parts: str) -> tuple[str, str]:
        """``(bucket, key)`` of a path under an ``s3://`` root."""
        rest = self.join(*parts).split("://", 1)[1]
        bucket, _, key = rest.partition("/")
        return bucket, key

    # -- credentials ------------------------------------------------------------------------------------
    def _key_id(self) -> str | None:
        c = self.config.access_key_id
        return c.get_secret_value() if c is not None else os.environ.get("AWS_ACCESS_KEY_ID")

    def _secret(self) -> str | None:
        c = self.config.secret_access_key
        return c.get_secret_value() if c is not None else os.environ.get("AWS_SECRET_ACCESS_KEY")

    def _region(self) -> str:
        return self.config.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"

    def secret_values(self) -> list[str]:
        """Strings to scrub from a third-party message."""
        return [s for s in (self._secret(), self._key_id() if self.config.access_key_id else None) if s]

    def scrub(self, text: str) -> str:
        for secret in self.secret_values():
            text = text.replace(secret, "***")
        return text

    # -- per library --------------------------------------------------------------------------------------
    def delta_options(self) -> dict[str, str] | None:
        options: dict[str, str] = {}
        if not self.is_local:
            endpoint = self.config.endpoint
            pairs = {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_REGION": self._region(),
                "AWS_ACCESS_KEY_ID": self._key_id(),
                "AWS_SECRET_ACCESS_KEY": self._secret(),
                "AWS_ALLOW_HTTP": "true" if endpoint and endpoint.startswith("http://") else None,
                "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false" if self.config.path_style else "true",
            }
            options.update({k: v for k, v in pairs.items() if v is not None})
        options.update(self.extra_options or {})
        return options or None

    def iceberg_properties(self) -> dict[str, str]:
        if self.is_local:
            return {}
        pairs = {
            "s3.endpoint": self.config.endpoint,
            "s3.region": self._region(),
            "s3.access-key-id": self._key_id(),
            "s3.secret-access-key": self._secret(),
            "s3.force-virtual-addressing": "false" if self.config.path_style else "true",
            "py-io-impl": "lakeforge.lake.iceberg.fileio.LakeFileIO",
        }
        return {k: v for k, v in pairs.items() if v is not None}

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """An Arrow filesystem and the root's path in it."""
        import pyarrow.fs as pafs

        if self.is_local:
            return pafs.LocalFileSystem(), self.root.removeprefix("file://")
        endpoint = self.config.endpoint
        kwargs: dict[str, Any] = {"region": self._region(), "access_key": self._key_id(), "secret_key": self._secret()}
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            kwargs.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
        kwargs["force_virtual_addressing"] = not self.config.path_style
        return pafs.S3FileSystem(**{k: v for k, v in kwargs.items() if v is not None}), self.root.split("://", 1)[1]

    def lock_client(self) -> Any:
        """The client of the run lock's three requests: lakeforge's own signer (no boto3 import, ~0.3 s of CPU)
        when credentials are in ``lake.storage`` or the environment, else boto3 and its credential chain."""
        key_id, secret = self._key_id(), self._secret()
        if not key_id or not secret:
            return self.s3_client()
        from lakeforge.state.s3_client import S3Client

        endpoint = self.config.endpoint or f"https://s3.{self._region()}.amazonaws.com"
        return S3Client(
            endpoint.rstrip("/"),
            self._region(),
            key_id,
            secret,
            os.environ.get("AWS_SESSION_TOKEN") if self.config.access_key_id is None else None,
            path_style=self.config.path_style,
            timeout=30.0,
        )

    def s3_client(self) -> Any:
        """A boto3 S3 client (``pip install 'lakeforge[s3]'``)."""
        from lakeforge.errors import MissingExtraError

        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise MissingExtraError("boto3", "s3") from None
        style = "path" if self.config.path_style else "virtual"
        return boto3.client(
            "s3",
            endpoint_url=self.config.endpoint,
            region_name=self._region(),
            aws_access_key_id=self._key_id(),
            aws_secret_access_key=self._secret(),
            config=Config(
                s3={"addressing_style": style}, retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30
            ),
        )
