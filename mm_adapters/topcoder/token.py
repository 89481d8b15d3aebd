"""Topcoder M2M tokens, cached in the provider instance so a warm Lambda reuses them across invocations.

Two sources (`TOKEN_SOURCE`):
- `static_parameter` (the seed design): an SSM SecureString holding a token someone else rotates.
- `auth0_proxy`: Topcoder's Auth0 proxy (`POST /token`, auth0-proxy-contract.json) with client
  credentials from Secrets Manager.

Neither the token, nor the client secret, nor the credentials JSON ever reaches a log line, an exception
message or a repr. Callers keep one provider per process (module level) and pass it to the API client.
Both providers are `mm_contracts.ports.TokenProvider`s (the one token port); callers type against the port.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from mm_adapters import aws
from mm_adapters.topcoder.transport import Transport, TransportError, Urllib3Transport, prepare
from mm_contracts.ports import Clock, TokenProvider
from mm_contracts.settings import TokenSettings, TokenSource
from mm_contracts.topcoder_auth import Auth0Credentials, Auth0TokenResponse

logger = logging.getLogger(__name__)

# Clients (tc-core-library-js m2m) refresh 60 s before the JWT's exp; so do we.
DEFAULT_REFRESH_MARGIN_SECONDS = 60
# The proxy subtracts this from the JWT's remaining life when it answers `expires_in`.
PROXY_EXPIRES_IN_MARGIN_SECONDS = 60
_MAX_ERROR_BODY = 200


class TokenError(RuntimeError):
    """A token could not be obtained. The message names the source, never a secret or the token."""


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim (epoch seconds) of a JWT-shaped token, or None. The signature is not checked:
    this only decides how long to cache a token that the API itself will verify."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return float(exp)
    return None


@dataclass(frozen=True)
class _Cached:
    token: str
    refresh_at: float  # epoch seconds: from here on the next get_token() fetches a new token

    def __repr__(self) -> str:
        return f"_Cached(token=<redacted>, refresh_at={self.refresh_at})"


class StaticParameterTokenProvider:
    """Token from an SSM SecureString (`/mm-processor/auth0/token`), read WithDecryption.

    Cached until 60 s before the JWT's `exp`; a value without a readable `exp` is cached `max_age_seconds`
    (the Powertools parameters default, 300 s), so a rotation is picked up within that time.
    """

    def __init__(
        self,
        parameter_name: str,
        ssm_client: Any | None = None,
        clock: Clock = time.time,
        max_age_seconds: float = 300,
    ) -> None:
        self.parameter_name = parameter_name
        self._ssm = ssm_client
        self._clock = clock
        self._max_age = max_age_seconds
        self._cached: _Cached | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0  # how many times SSM was read (observability and tests)

    def __repr__(self) -> str:
        return f"StaticParameterTokenProvider(parameter_name={self.parameter_name!r}, token=<redacted>)"

    def get_token(self, force_refresh: bool = False) -> str:
        with self._lock:
            now = self._clock()
            if not force_refresh and self._cached is not None and now < self._cached.refresh_at:
                return self._cached.token
            token = self._read_parameter()
            self._cached = _Cached(token, self._refresh_at(token, now))
            return token

    def _read_parameter(self) -> str:
        ssm = self._ssm if self._ssm is not None else aws.client("ssm")
        self.fetch_count += 1
        try:
            response = ssm.get_parameter(Name=self.parameter_name, WithDecryption=True)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise TokenError(f"cannot read SSM parameter {self.parameter_name}: {code}") from None
        except BotoCoreError as error:
            raise TokenError(f"cannot read SSM parameter {self.parameter_name}: {type(error).__name__}") from None
        value = str(response.get("Parameter", {}).get("Value", "")).strip()
        if not value:
            raise TokenError(f"SSM parameter {self.parameter_name} is empty")
        logger.info("read M2M token from SSM", extra={"parameter": self.parameter_name})
        return value

    def _refresh_at(self, token: str, now: float) -> float:
        exp = jwt_expiry(token)
        if exp is None:
            return now + self._max_age
        if exp <= now:
            raise TokenError(f"the token in SSM parameter {self.parameter_name} has expired")
        refresh_at = exp - DEFAULT_REFRESH_MARGIN_SECONDS
        if refresh_at <= now:
            # Still valid for a few seconds: use it once, read the parameter again next time.
            logger.warning(
                "M2M token in SSM expires within the refresh margin",
                extra={"parameter": self.parameter_name, "seconds_left": round(exp - now)},
            )
        return refresh_at


class Auth0ProxyTokenProvider:
    """Token from Topcoder's Auth0 proxy with client credentials held in Secrets Manager.

    Expiry: the proxy answers `expires_in = exp - 60 - now`. The token's real expiry is taken from the
    JWT's `exp` when readable, else reconstructed as `now + expires_in + 60`; the token is cached until
    `refresh_margin_seconds` (default 60) before that real expiry, i.e. exactly when the proxy's own Redis
    entry lapses, so the next call gets a new token rather than the proxy's cached one. A token that is
    already inside the margin when received (a larger margin, a stale proxy cache) triggers one
    `fresh_token` request. `force_refresh` (after a 401) re-reads the secret too and sends `fresh_token`.
    """

    def __init__(
        self,
        proxy_url: str,
        credentials_secret_arn: str,
        secrets_client: Any | None = None,
        transport: Transport | None = None,
        clock: Clock = time.time,
        refresh_margin_seconds: float = DEFAULT_REFRESH_MARGIN_SECONDS,
        timeout_seconds: float = 10,
    ) -> None:
        self.proxy_url = proxy_url
        self.credentials_secret_arn = credentials_secret_arn
        self._secrets = secrets_client
        self._transport = transport if transport is not None else Urllib3Transport()
        self._clock = clock
        self._margin = refresh_margin_seconds
        self._timeout = timeout_seconds
        self._credentials: Auth0Credentials | None = None
        self._cached: _Cached | None = None
        self._lock = threading.Lock()
        self.proxy_calls = 0  # observability and tests
        self.secret_reads = 0

    def __repr__(self) -> str:
        return (
            f"Auth0ProxyTokenProvider(proxy_url={self.proxy_url!r}, "
            f"credentials_secret_arn={self.credentials_secret_arn!r}, token=<redacted>)"
        )

    def get_token(self, force_refresh: bool = False) -> str:
        with self._lock:
            now = self._clock()
            if not force_refresh and self._cached is not None and now < self._cached.refresh_at:
                return self._cached.token
            if force_refresh or self._credentials is None:
                self._credentials = self._read_credentials()
            token, refresh_at = self._request_token(self._credentials, fresh=force_refresh)
            if refresh_at <= self._clock() and not force_refresh:
                # The proxy served a token already inside our margin (its cache): ask Auth0 for a new one.
                token, refresh_at = self._request_token(self._credentials, fresh=True)
            self._cached = _Cached(token, refresh_at)
            return token

    def _read_credentials(self) -> Auth0Credentials:
        client = self._secrets if self._secrets is not None else aws.client("secretsmanager")
        self.secret_reads += 1
        where = f"secret {self.credentials_secret_arn}"
        try:
            response = client.get_secret_value(SecretId=self.credentials_secret_arn)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise TokenError(f"cannot read {where}: {code}") from None
        except BotoCoreError as error:
            raise TokenError(f"cannot read {where}: {type(error).__name__}") from None
        try:
            data = json.loads(response.get("SecretString") or "")
        except ValueError:
            raise TokenError(f"{where} is not a JSON object") from None
        if not isinstance(data, dict):
            raise TokenError(f"{where} is not a JSON object")
        try:
            return Auth0Credentials.model_validate(data)
        except ValidationError as error:
            # Field names and error types only: pydantic's default text would echo the values.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'secret'}: {err['type']}" for err in error.errors()
            )
            raise TokenError(f"{where} is incomplete ({problems})") from None

    def _request_token(self, credentials: Auth0Credentials, *, fresh: bool) -> tuple[str, float]:
        self.proxy_calls += 1
        started = self._clock()
        try:
            response = self._transport.send(
                prepare("POST", self.proxy_url, json_body=credentials.proxy_body(fresh_token=fresh)),
                timeout=self._timeout,
            )
        except TransportError as error:
            raise TokenError(f"Auth0 proxy unreachable: {type(error).__name__}") from None
        logger.info(
            "Auth0 proxy token request",
            extra={"status": response.status_code, "fresh_token": fresh, "url": self.proxy_url},
        )
        if response.status_code != 200:
            raise TokenError(
                f"Auth0 proxy answered {response.status_code}: {self._redacted(response.text, credentials)}"
            )
        try:
            parsed = Auth0TokenResponse.model_validate(response.json())
        except (ValueError, ValidationError):
            raise TokenError("Auth0 proxy answered 200 without a usable access_token/expires_in") from None
        token = parsed.access_token.get_secret_value()
        exp = jwt_expiry(token)
        real_expiry = exp if exp is not None else started + parsed.expires_in + PROXY_EXPIRES_IN_MARGIN_SECONDS
        return token, real_expiry - self._margin

    @staticmethod
    def _redacted(text: str, credentials: Auth0Credentials) -> str:
        """The proxy's error text, truncated, with anything credential-like removed (it may echo input)."""
        snippet = text
        for secret in (credentials.client_secret.get_secret_value(), credentials.client_id):
            if secret:
                snippet = snippet.replace(secret, "<redacted>")
        snippet = " ".join(snippet.split())
        return snippet[:_MAX_ERROR_BODY]


def build_token_provider(settings: TokenSettings) -> TokenProvider:
    """The provider `TOKEN_SOURCE` selects. Build once per process and keep it (warm starts reuse it)."""
    if settings.token_source is TokenSource.AUTH0_PROXY:
        if not (settings.auth0_proxy_url and settings.auth0_credentials_secret_arn):  # TokenSettings checks too
            raise TokenError("TOKEN_SOURCE=auth0_proxy needs AUTH0_PROXY_URL and AUTH0_CREDENTIALS_SECRET_ARN")
        return Auth0ProxyTokenProvider(
            settings.auth0_proxy_url,
            settings.auth0_credentials_secret_arn,
            refresh_margin_seconds=settings.token_refresh_margin_seconds,
        )
    return StaticParameterTokenProvider(settings.token_parameter_name)
