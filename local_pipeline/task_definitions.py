"""The scorer task definitions the fake Fargate holds: as the imported task definitions would be (created outside
the stacks), with what the scorer needs to report (v5: a review; v6: the run's review summation, decision 090)."""

from __future__ import annotations

from infrastructure.config import EnvironmentConfig
from local_pipeline.fargate import TaskDefinitionSim
from local_pipeline.results import review_api_url
from mm_contracts.models.phase import Platform
from topcoder_standin import TopcoderStandIn


def scorer_task_definitions(
    config: EnvironmentConfig, standin: TopcoderStandIn, token_parameter_name: str, command: tuple[str, ...]
) -> list[TaskDefinitionSim]:
    """One task definition per challenge: where its scorer posts and with which ids, the token as a secret."""
    definitions = []
    for challenge in config.challenges:
        if challenge.served_by is Platform.V6:
            reporting: dict[str, object] = {
                "MM_REVIEW_API_URL": review_api_url(standin),
                "MM_SUMMATION_SCORECARD_ID": challenge.scorecard_id,
            }
        else:
            reporting = {
                "MM_SUBMISSION_API_URL": standin.base_url,
                "MM_REVIEW_TYPE_ID": challenge.review_type_id,
                "MM_REVIEWER_ID": challenge.reviewer_id,
                "MM_SCORECARD_ID": challenge.score_card_id,
                "MM_TEST_TYPE": challenge.test_type,
            }
        environment = {name: str(value) for name, value in reporting.items() if value is not None}
        definitions.append(
            TaskDefinitionSim(
                arn=challenge.task_definition_arn,
                container_name=challenge.scorer_container_name,
                command=command,
                environment={**environment, "PYTHONDONTWRITEBYTECODE": "1"},
                # As the task definition's `secrets` would: valueFrom the token parameter.
                secrets={"MM_M2M_TOKEN": token_parameter_name},
                cpu=str(challenge.cpu or 1024),
                memory=str(challenge.memory_mb or 2048),
            )
        )
    return definitions
