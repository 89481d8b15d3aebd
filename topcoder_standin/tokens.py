"""The stand-in's tokens: the Auth0 proxy's `POST /token` (its cache key, its `expires_in`), minting HS256 JWTs
with Auth0's M2M claims, and the bearer check the APIs run (issued here, not expired, not revoked)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from topcoder_standin import v6
from topcoder_standin.faults import Fault
from topcoder_standin.records import RecordedRequest, Reply
from topcoder_standin.spec import validate_proxy_body

TOKEN_PATH = "/token"
PROXY_EXPIRY_MARGIN_SECONDS = 60  # the proxy answers expires_in = exp - 60 - now
# The scopes a minted M2M token carries unless the test says otherwise (`client_scopes`, `issue_token`): the
# v5 calls' (not checked by the v5 side) and the v6 summation scopes (checked per route).
V5_M2M_SCOPES = ("read:submission", "read:review_type", "create:review", "read:review", "update:review")
DEFAULT_M2M_SCOPES = (*V5_M2M_SCOPES, *v6.SUMMATION_SCOPES)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class Issued:
    client_key: str
    exp: float
    subject: str
    scopes: frozenset[str] = frozenset()


class TokenAuthority:
    """Auth0 behind the proxy: every token it minted, the proxy's cache (its Redis) and the revoked tokens."""

    def __init__(
        self,
        *,
        lock: threading.RLock,
        clock: Callable[[], float],
        lifetime_seconds: int,
        clients: Mapping[str, str] | None,  # client_id -> client_secret; None accepts any
        client_scopes: Mapping[str, Iterable[str]] | None,  # client_id -> its grants; absent: all of ours
    ) -> None:
        self._lock = lock
        self._clock = clock
        self._lifetime = lifetime_seconds
        self._clients = dict(clients) if clients is not None else None
        self._client_scopes = {key: tuple(value) for key, value in (client_scopes or {}).items()}
        self._signing_key = secrets.token_bytes(32)
        self._tokens: dict[str, Issued] = {}
        self._proxy_cache: dict[str, str] = {}  # client key -> token
        self._revoked: set[str] = set()

    def scopes_of(self, client_id: str) -> tuple[str, ...]:
        return self._client_scopes.get(client_id, DEFAULT_M2M_SCOPES)

    def issue(self, client_key: str, client_id: str, audience: str, scopes: Iterable[str]) -> str:
        """Mint a token (and make it the proxy's cached token for `client_key`)."""
        now = self._clock()
        exp = math.floor(now) + self._lifetime
        subject = f"{client_id}@clients"
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {
            "iss": "https://topcoder-standin.invalid/",
            "sub": subject,
            "aud": audience,
            "iat": math.floor(now),
            "exp": exp,
            "gty": "client-credentials",
            "jti": uuid.uuid4().hex,
        }
        granted = tuple(scopes)
        if granted:
            claims["scope"] = " ".join(granted)  # Auth0's M2M claim: space-separated
        payload = _b64url(json.dumps(claims).encode())
        signature = _b64url(hmac.new(self._signing_key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        token = f"{header}.{payload}.{signature}"
        with self._lock:
            self._tokens[token] = Issued(client_key, exp, subject, frozenset(granted))
            self._proxy_cache[client_key] = token
        return token

    def issue_direct(self, client_id: str, audience: str, scopes: Iterable[str] | None) -> str:
        """A valid token without going through the proxy."""
        with self._lock:
            granted = tuple(scopes) if scopes is not None else self.scopes_of(client_id)
            return self.issue(f"auth0-{client_id}-direct", client_id, audience, granted)

    def rotate(self, headers: Mapping[str, str]) -> str:
        """topcoder-401-rotated: the presented token stops working; returns the new one."""
        _, _, token = str(headers.get("Authorization") or "").partition(" ")
        with self._lock:
            issued = self._tokens.get(token.strip())
            self._revoked.add(token.strip())
            return self.issue(
                f"rotated-{uuid.uuid4().hex}",
                issued.subject.split("@")[0] if issued else "x",
                "",
                issued.scopes if issued else DEFAULT_M2M_SCOPES,
            )

    def expire_all(self) -> None:
        """Every token issued so far is now expired; the proxy cache is emptied."""
        with self._lock:
            past = self._clock() - 1
            for issued in self._tokens.values():
                issued.exp = past
            self._proxy_cache.clear()

    def bearer(self, headers: Mapping[str, str]) -> Issued | None:
        """The bearer token's record if it was issued here, is not expired and not revoked."""
        value = headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        with self._lock:
            issued = self._tokens.get(token.strip())
            if issued is None or issued.exp <= self._clock() or token.strip() in self._revoked:
                return None
            return issued

    def subject(self, headers: Mapping[str, str]) -> str | None:
        """The token's subject if the bearer token is good (see `bearer`)."""
        issued = self.bearer(headers)
        return issued.subject if issued is not None else None

    # ---- the Auth0 proxy's POST /token ----------------------------------------------------------

    def answer(self, record: RecordedRequest, body: Any, raw_body: bytes, fault: Fault | None) -> Reply:
        """Validate the proxy's body contract (400), then answer (or fail as the fault says)."""
        if isinstance(body, dict) and "client_secret" in body:
            record.json = {**body, "client_secret": "<redacted>"}
        if not raw_body:
            return Reply(500, "Empty body.")
        errors = validate_proxy_body(body)
        if errors:
            record.breach(errors)
            return Reply(400, f"Payload validation error: {errors}")
        if fault is not None and fault.status is not None:
            return Reply(fault.status, fault.body, fault.headers)
        status, payload = self._proxy(body)
        return Reply(status, payload)

    def _proxy(self, body: dict[str, Any]) -> tuple[int, Any]:
        client_id = str(body["client_id"])
        if self._clients is not None and self._clients.get(client_id) != body["client_secret"]:
            # The proxy passes Auth0's answer through.
            return 401, {"error": "access_denied", "error_description": "Unauthorized"}
        target = body.get("audience") or body.get("scope") or ""
        digest = hashlib.md5(  # noqa: S324 - mirrors the proxy's cache key, not a security function
            json.dumps([client_id, body["client_secret"], target]).encode()
        ).hexdigest()
        client_key = f"{body.get('provider', 'auth0')}-{client_id}-{digest}"
        now = self._clock()
        with self._lock:
            cached = None if body.get("fresh_token") else self._proxy_cache.get(client_key)
            issued = self._tokens.get(cached) if cached else None
            if cached and issued and issued.exp - PROXY_EXPIRY_MARGIN_SECONDS - now > 0:
                token = cached
            else:
                token = self.issue(client_key, client_id, str(target), self.scopes_of(client_id))
                issued = self._tokens[token]
            assert issued is not None
            expires_in = math.floor(issued.exp - PROXY_EXPIRY_MARGIN_SECONDS - now)
        return 200, {"access_token": token, "expires_in": expires_in}
