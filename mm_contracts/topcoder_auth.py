"""Wire shapes of the Auth0 proxy (Topcoder's M2M tokens): the client credentials we keep in Secrets Manager, the
request body we send and the response we accept. Apart from the review shapes (`mm_contracts.topcoder`, which
re-exports these) so that a function that only needs a token builds no review model (decision 112).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class Auth0Credentials(BaseModel):
    """The Secrets Manager JSON of the Auth0 proxy mode. `client_secret` is a SecretStr: never printed."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True, hide_input_in_errors=True)

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    auth0_url: str = Field(min_length=1)
    audience: str | None = None
    scope: str | None = None

    @model_validator(mode="after")
    def _audience_xor_scope(self) -> Auth0Credentials:
        # The proxy's contract: audience and scope are mutually exclusive; one of them names the API.
        if bool(self.audience) == bool(self.scope):
            raise ValueError("exactly one of audience or scope is required")
        if not self.client_secret.get_secret_value():
            raise ValueError("client_secret is empty")
        return self

    def proxy_body(self, *, fresh_token: bool) -> dict[str, Any]:
        """The proxy request body (auth0-proxy-contract.json). Holds the secret: never log it."""
        body: dict[str, Any] = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value(),
            "auth0_url": self.auth0_url,
            "fresh_token": fresh_token,
        }
        if self.audience:
            body["audience"] = self.audience
        else:
            body["scope"] = self.scope
        return body


class Auth0TokenResponse(BaseModel):
    """The proxy's 200 body: `access_token` and `expires_in` (seconds left, already minus 60 s)."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    access_token: SecretStr
    expires_in: float = Field(ge=0, allow_inf_nan=False)

    @field_validator("access_token")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("empty access_token")
        return value
