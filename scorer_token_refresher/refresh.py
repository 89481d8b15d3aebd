"""Whether the stored scorer token must be replaced, and replacing it: plain code over an SSM client and a token
provider (no clock, no module state), so a test drives it with moto and a fake provider.

The parameter holds the bare token (what ECS injects as `ACCESS_TOKEN`). Its expiry is the JWT's `exp`
(`jwt_expiry`, unverified: only the age matters here). A token is written only when the stored one is missing,
has no readable expiry, or expires within the margin, so a quiet run reads and writes nothing else. Nothing here
logs, returns or raises with the token: errors name the parameter and an error code only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mm_adapters.topcoder.token import TokenError, jwt_expiry
from mm_contracts.ports import TokenProvider

PARAMETER_DESCRIPTION = "Topcoder M2M token for scorer tasks (ACCESS_TOKEN), kept fresh by mm-processor (091)"


class ScorerTokenError(RuntimeError):
    """The stored token could not be read or written, or no usable token was obtained; never quotes a token."""


class Action(StrEnum):
    KEPT = "kept"  # the stored token outlives the margin: nothing written
    REFRESHED = "refreshed"


class Why(StrEnum):
    FRESH = "fresh"
    MISSING = "missing"  # first run: CloudFormation cannot create a SecureString, so this function does
    NO_EXPIRY = "no_readable_expiry"
    EXPIRES_SOON = "expires_within_margin"


@dataclass(frozen=True)
class StoredToken:
    expires_at: float | None  # epoch seconds; None: missing or no readable `exp`
    present: bool

    def seconds_left(self, now: float) -> float:
        """What the gauge reports: 0 for a token that is missing, unreadable or expired."""
        return max(0.0, self.expires_at - now) if self.expires_at is not None else 0.0


@dataclass(frozen=True)
class RefreshOutcome:
    action: Action
    why: Why
    expires_at: float  # of the token the parameter holds after the run
    seconds_to_expiry: float
    margin_seconds: int

    def log_fields(self) -> dict[str, object]:
        return {
            "action": self.action.value,
            "why": self.why.value,
            "expires_at": round(self.expires_at),
            "seconds_to_expiry": round(self.seconds_to_expiry),
            "margin_seconds": self.margin_seconds,
        }


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def read_stored(ssm: Any, parameter_name: str) -> StoredToken:
    """The stored token's expiry (the value itself goes no further than this function)."""
    try:
        response = ssm.get_parameter(Name=parameter_name, WithDecryption=True)
    except ClientError as error:
        if _code(error) == "ParameterNotFound":
            return StoredToken(expires_at=None, present=False)
        raise ScorerTokenError(f"cannot read SSM parameter {parameter_name}: {_code(error)}") from None
    except BotoCoreError as error:
        raise ScorerTokenError(f"cannot read SSM parameter {parameter_name}: {type(error).__name__}") from None
    value = str(response.get("Parameter", {}).get("Value", "")).strip()
    return StoredToken(expires_at=jwt_expiry(value) if value else None, present=bool(value))


def why_refresh(stored: StoredToken, *, now: float, margin_seconds: int) -> Why:
    if not stored.present:
        return Why.MISSING
    if stored.expires_at is None:
        return Why.NO_EXPIRY
    if stored.expires_at - now <= margin_seconds:
        return Why.EXPIRES_SOON
    return Why.FRESH


def write_token(ssm: Any, parameter_name: str, token: str, *, kms_key_id: str) -> None:
    try:
        ssm.put_parameter(
            Name=parameter_name,
            Value=token,
            Type="SecureString",
            KeyId=kms_key_id,
            Overwrite=True,
            Description=PARAMETER_DESCRIPTION,
        )
    except ClientError as error:
        raise ScorerTokenError(f"cannot write SSM parameter {parameter_name}: {_code(error)}") from None
    except BotoCoreError as error:
        raise ScorerTokenError(f"cannot write SSM parameter {parameter_name}: {type(error).__name__}") from None


def refresh(
    ssm: Any,
    provider: TokenProvider,
    *,
    parameter_name: str,
    kms_key_id: str,
    margin_seconds: int,
    now: float,
    stored: StoredToken | None = None,
) -> RefreshOutcome:
    """Replace the stored token when it is missing or expires within `margin_seconds` of `now`.

    The provider is an `Auth0ProxyTokenProvider` whose own margin is `margin_seconds`: it asks the proxy for a
    fresh token itself when the proxy's cached one would not outlive the margin (decision 031).
    """
    stored = read_stored(ssm, parameter_name) if stored is None else stored
    why = why_refresh(stored, now=now, margin_seconds=margin_seconds)
    if why is Why.FRESH:
        assert stored.expires_at is not None
        return RefreshOutcome(Action.KEPT, why, stored.expires_at, stored.expires_at - now, margin_seconds)
    try:
        token = provider.get_token()
    except TokenError as error:
        raise ScorerTokenError(f"no token from the Auth0 proxy: {error}") from None
    expires_at = jwt_expiry(token)
    if expires_at is None:
        # ECS would hand the runner a token nobody can age; Topcoder's M2M tokens are JWTs.
        raise ScorerTokenError("the Auth0 proxy returned a token without a readable exp claim: not stored")
    if expires_at <= now:
        raise ScorerTokenError("the Auth0 proxy returned an expired token: not stored")
    write_token(ssm, parameter_name, token, kms_key_id=kms_key_id)
    return RefreshOutcome(Action.REFRESHED, why, expires_at, expires_at - now, margin_seconds)
