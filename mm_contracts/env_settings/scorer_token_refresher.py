"""The scorer-token refresher's settings."""

from __future__ import annotations

from pydantic import Field

from mm_contracts.env_settings.base import EnvSettings


class ScorerTokenRefresherSettings(EnvSettings):
    """Keeps a Topcoder M2M token for scorer tasks in an SSM SecureString (token source auth0_proxy, decision 091).

    Topcoder's ecs-runner reads `ACCESS_TOKEN`, which a task definition can only take from a parameter or secret
    (`secrets`, never overrides); with the Auth0 proxy no parameter holds a token, so this function keeps one.
    """

    powertools_service_name: str = "scorer-token-refresher"
    auth0_proxy_url: str = Field(min_length=1)
    auth0_credentials_secret_arn: str = Field(min_length=1)  # JSON: client_id, client_secret, auth0_url, audience
    scorer_token_parameter_name: str = Field(min_length=1)  # `<ssmPrefix>/auth0/scorer-token`
    # The key PutParameter encrypts with: the AWS managed key unless the environment names one of its own.
    scorer_token_kms_key_id: str = Field(default="alias/aws/ssm", min_length=1)
    # A stored token that expires within this long is replaced: a task started now must keep a valid token for
    # its whole run (ECS reads the parameter once, at start), and the token ages one schedule interval per run.
    refresh_margin_seconds: int = Field(ge=60, le=2 * 86_400)
