"""PyMySQL connections that do not load the system's CA certificates when they verify nothing.

Given no TLS option, PyMySQL 1.1+ tries TLS when the server offers it (PREFERRED mode) with a context that
checks neither the certificate nor the host name (no CA was given), yet builds it with
``ssl.create_default_context()``, which parses the whole system CA bundle: ~0.04 s of CPU per connection,
in every ``lakeforge run`` of a MySQL/MariaDB source (docs/benchmarks.md, "Fixed cost of a run", fourth
pass). The same context without the unused bundle behaves the same: TLS when the server offers it,
plaintext otherwise, nothing verified. Explicit TLS options still get PyMySQL's own context.
"""

from __future__ import annotations

import ssl
from typing import Any

import pymysql.connections  # noqa: TID253 - this module is imported only by the functions that connect


class Connection(pymysql.connections.Connection):  # type: ignore[misc]  # PyMySQL has no type hints here
    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        if sslp:  # a CA, a certificate, a cipher or a context given: PyMySQL's own, verified as asked
            context: ssl.SSLContext = super()._create_ssl_ctx(sslp)
            return context
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # what create_default_context makes, minus the CAs
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.options |= ssl.OP_NO_SSLv2 | ssl.OP_NO_SSLv3
        return context


def connect(**options: Any) -> Connection:
    """``pymysql.connect(**options)`` (see the module docstring for the one difference)."""
    return Connection(**options)
