"""Database URLs parsed strictly: ``scheme://user:password@host:port/database?options``.

Python's ``urlsplit`` ends the authority at the first ``/``, so a password with an unencoded ``/`` or ``@``
(``root:p@ss:w/rd@host``) is split into a wrong host, a port made of password characters, and a database
that holds the rest of the password. Here the user information ends at the *last* ``@`` before the host,
so such a URL still parses into the whole password; :attr:`DbUrl.ambiguous` says it needed that rule, so
callers can tell the user how to percent-encode it. Errors never quote the password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

_RESERVED = "@/:?#[]"
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/?#\[\]@]+)(?::(?P<port>[^/?#]*))?$")


class UrlError(ValueError):
    """A URL that cannot be read; the message never contains the password."""


@dataclass(frozen=True)
class DbUrl:
    scheme: str
    host: str
    port: int | None
    user: str | None
    password: str | None
    database: str
    query: str = ""
    ambiguous: bool = False
    """The password held reserved characters (``@ / : ? #``) that should have been percent-encoded."""

    def without_password(self) -> str:
        """The URL with the user but no password (safe to write into a config file)."""
        auth = quote(self.user, safe="") + "@" if self.user else ""
        host = self.host if ":" not in self.host or self.host.startswith("[") else f"[{self.host}]"
        port = f":{self.port}" if self.port else ""
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{auth}{host}{port}/{quote(self.database, safe='')}{query}"


def encoding_hint() -> str:
    return (
        "percent-encode these characters in a URL's password: @ -> %40, / -> %2F, : -> %3A, ? -> %3F, "
        "# -> %23 (python -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=\"\"))' "
        "PASSWORD), or leave the password out of the URL and set password: ${VAR}"
    )


def parse_db_url(url: str) -> DbUrl:
    """Parse ``url`` strictly (see the module docstring); raises :class:`UrlError` without the password."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise UrlError("is not a URL of the form scheme://user:password@host:port/database")
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        hostpart, userinfo = rest, ""
    if "@" in hostpart:  # pragma: no cover - rpartition leaves none
        raise UrlError("has an '@' after the host")
    authority, slash, tail = hostpart.partition("/")
    database, _, query = tail.partition("?")
    if "?" in authority:
        authority, _, query = authority.partition("?")
    user, password, ambiguous = _userinfo(userinfo)
    match = _HOST_PORT.match(authority)
    if not match:
        raise UrlError(_blame(ambiguous, "has no valid host"))
    port_text = match.group("port")
    port: int | None = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UrlError(_blame(ambiguous, "has a port that is not a number from 1 to 65535"))
        port = int(port_text)
    host = match.group("host").strip("[]")
    return DbUrl(scheme.lower(), host, port, user, password, unquote(database), query, ambiguous)


def _userinfo(userinfo: str) -> tuple[str | None, str | None, bool]:
    if not userinfo:
        return None, None, False
    user, colon, password = userinfo.partition(":")
    ambiguous = any(c in password for c in _RESERVED)
    return unquote(user) or None, (unquote(password) if colon else None), ambiguous


def _blame(ambiguous: bool, what: str) -> str:
    if ambiguous:
        return f"{what}; its password seems to hold unencoded characters: {encoding_hint()}"
    return f"{what}; if the password holds @ / : ? or #, {encoding_hint()}"


def split_into(model: object) -> None:
    """Move a pydantic model's ``url`` into its ``host``/``port``/``user``/``password``/``database`` fields (a
    source or a publish target), parsed strictly; raises ValueError (pydantic's validation error) without the
    password."""
    from pydantic import SecretStr

    url: str | None = getattr(model, "url", None)
    if url is None:
        if getattr(model, "database", None) is None:
            raise ValueError("give either url or database (with host, port, user)")
        return
    try:
        parts = parse_db_url(url)
    except UrlError as exc:
        raise ValueError(f"url {exc}") from None
    updates: dict[str, object] = {
        "host": parts.host,
        "port": parts.port or getattr(model, "port", None),
        "user": parts.user or getattr(model, "user", None),
        "database": parts.database or getattr(model, "database", None),
    }
    if parts.password is not None:
        if getattr(model, "password", None) is not None:
            raise ValueError("password is given twice: in url and in password")
        updates["password"] = SecretStr(parts.password)
    for key, value in updates.items():
        object.__setattr__(model, key, value)
    object.__setattr__(model, "url", None)
    if not getattr(model, "database", None):
        raise ValueError("url names no database")
