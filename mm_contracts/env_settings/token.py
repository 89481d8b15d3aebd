"""How a function obtains the Topcoder M2M token (the challenge processor's and the completion's settings)."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from mm_contracts.env_settings.base import EnvSettings


class TokenSource(StrEnum):
    STATIC_PARAMETER = "static_parameter"  # SSM SecureString holding a token (seed design)
    AUTH0_PROXY = "auth0_proxy"  # Topcoder's Auth0 proxy with client credentials from Secrets Manager


class TokenSettings(EnvSettings):
    """How a function obtains the Topcoder M2M token."""

    token_source: TokenSource = TokenSource.STATIC_PARAMETER
    token_parameter_name: str = "/mm-processor/auth0/token"
    auth0_proxy_url: str | None = None
    auth0_credentials_secret_arn: str | None = None  # JSON: client_id, client_secret, auth0_url, audience
    token_refresh_margin_seconds: int = Field(default=60, ge=0, le=3600)

    @model_validator(mode="after")
    def _auth0_complete(self) -> Self:
        if self.token_source is TokenSource.AUTH0_PROXY and not (
            self.auth0_proxy_url and self.auth0_credentials_secret_arn
        ):
            raise ValueError("TOKEN_SOURCE=auth0_proxy needs AUTH0_PROXY_URL and AUTH0_CREDENTIALS_SECRET_ARN")
        return self
