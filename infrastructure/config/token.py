"""How the functions get a Topcoder token, and whether a scorer-token parameter is kept (decisions 087, 091)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from infrastructure.config.base import ARN, ConfigModel
from mm_contracts.models.challenge import ScorerEnvironment
from mm_contracts.settings import TokenSource


class TokenConfig(ConfigModel):
    source: TokenSource = TokenSource.STATIC_PARAMETER
    auth0_proxy_url: str | None = None
    auth0_credentials_secret_arn: str | None = Field(default=None, pattern=ARN + "secretsmanager:")
    # auth0_proxy only: a scheduled function keeps a token in `<ssmPrefix>/auth0/scorer-token` (SecureString) for
    # task definitions to reference as ACCESS_TOKEN (Topcoder's ecs-runner, decisions 087 and 091). With
    # static_parameter the token parameter already exists and is what a task definition references.
    scorer_token_parameter: bool = False
    # How often it checks the stored token (the token lives hours; a check reads one parameter).
    scorer_token_refresh_minutes: int = Field(default=30, ge=5, le=720)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.source is TokenSource.AUTH0_PROXY and not (self.auth0_proxy_url and self.auth0_credentials_secret_arn):
            raise ValueError("token.auth0ProxyUrl and token.auth0CredentialsSecretArn are required for auth0_proxy")
        if self.scorer_token_parameter and self.source is not TokenSource.AUTH0_PROXY:
            raise ValueError(
                f"token.scorerTokenParameter needs token.source auth0_proxy: with {self.source.value} the token "
                "parameter <ssmPrefix>/auth0/token already holds a token a task definition can reference"
            )
        return self

    def scorer_token_refusal(self, scorer_environments: dict[str, ScorerEnvironment]) -> str | None:
        """Why this token config cannot serve these challenges (challengeId -> scorerEnvironment), or None.

        Topcoder's ecs-runner needs ACCESS_TOKEN from a parameter its task definition references; with the Auth0
        proxy only the scorer-token parameter is one.
        """
        runners = sorted(c for c, env in scorer_environments.items() if env is ScorerEnvironment.TOPCODER_ECS_RUNNER)
        if runners and self.source is TokenSource.AUTH0_PROXY and not self.scorer_token_parameter:
            return (
                f"token.scorerTokenParameter must be true: challenges {', '.join(runners)} use scorerEnvironment "
                "topcoder_ecs_runner, whose task definition takes ACCESS_TOKEN from an SSM parameter, and with "
                "token.source auth0_proxy only the scorer-token parameter holds one (decision 091)"
            )
        return None
