"""SCRAM-SHA-256 (RFC 5802 / RFC 7677), the server side, as PostgreSQL runs it over SASL messages.

No channel binding is offered (the mechanism list holds only ``SCRAM-SHA-256``), so clients send the GS2
header ``n,,`` or ``y,,``. The password never crosses the wire; a wrong one fails the proof check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

MECHANISM = "SCRAM-SHA-256"
ITERATIONS = 4096


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


class ScramError(Exception):
    """The client's SCRAM messages are malformed or its proof is wrong."""


class ScramServer:
    """One authentication exchange for a user whose password is known."""

    def __init__(self, password: str) -> None:
        self.salt = secrets.token_bytes(16)
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), self.salt, ITERATIONS)
        self.stored_key = hashlib.sha256(_hmac(salted, b"Client Key")).digest()
        self.server_key = _hmac(salted, b"Server Key")
        self.nonce = ""
        self.client_first_bare = ""
        self.server_first = ""
        self.gs2_header = ""

    def first(self, client_first: str) -> str:
        """Answer the client-first message (``n,,n=,r=...``) with the server-first message."""
        if not client_first.startswith(("n,,", "y,,")):
            raise ScramError("channel binding is not supported")
        self.gs2_header = client_first[:3]
        self.client_first_bare = client_first[3:]
        attrs = dict(p.split("=", 1) for p in self.client_first_bare.split(",") if "=" in p)
        if "r" not in attrs:
            raise ScramError("client-first message has no nonce")
        self.nonce = attrs["r"] + secrets.token_urlsafe(18)
        salt = base64.b64encode(self.salt).decode()
        self.server_first = f"r={self.nonce},s={salt},i={ITERATIONS}"
        return self.server_first

    def final(self, client_final: str) -> str:
        """Check the client's proof; return the server-final message (``v=...``) or raise ScramError."""
        without_proof, _, proof_part = client_final.rpartition(",p=")
        attrs = dict(p.split("=", 1) for p in without_proof.split(",") if "=" in p)
        if attrs.get("r") != self.nonce:
            raise ScramError("nonce mismatch")
        if attrs.get("c") != base64.b64encode(self.gs2_header.encode()).decode():
            raise ScramError("channel binding mismatch")
        auth_message = f"{self.client_first_bare},{self.server_first},{without_proof}".encode()
        signature = _hmac(self.stored_key, auth_message)
        try:
            proof = base64.b64decode(proof_part, validate=True)
        except ValueError:
            raise ScramError("malformed proof") from None
        if len(proof) != len(signature):
            raise ScramError("malformed proof")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), self.stored_key):
            raise ScramError("wrong password")
        return "v=" + base64.b64encode(_hmac(self.server_key, auth_message)).decode()
