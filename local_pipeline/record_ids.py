"""The ids of an input record, read with the router's own decoding (`router_lambda.records.classify_record`).

The engine needs them twice: to seed the Topcoder stand-in with every submission the router will route (its
Submission API must know them), and to match a `kafka-redelivery` fault rule to a record. Both read the record
exactly as the router does (topic -> platform, base64, JSON, envelope or bare payload, field validation), so the
harness keeps no second parser of the bus formats. The one step the router does against DynamoDB (a legacy
numeric challenge id -> the challenge's UUID, through the challenge table) is read from the environment config.
"""

from __future__ import annotations

from collections.abc import Iterable

from infrastructure.config import ChallengeSettings
from local_pipeline.kafka import KafkaMessage
from mm_contracts.models.bus import InboundSubmission
from mm_contracts.models.phase import Platform
from mm_contracts.settings import RouterSettings
from router_lambda.records import MskRecord, Verdict, classify_record


def _classified(message: KafkaMessage, settings: RouterSettings) -> InboundSubmission | Verdict:
    return classify_record(MskRecord.model_validate(message.msk_record()), settings)


def _challenge_uuid(submission: InboundSubmission, challenges: Iterable[ChallengeSettings]) -> str:
    """The v5 challenge id of a submission: a legacy numeric id resolved through the configured challenges (as
    the challenge table's alias rows do), else its v5ChallengeId hint, else the id as sent."""
    challenge_id = str(submission.challenge_id)
    if submission.platform is not Platform.V5 or not challenge_id.isdigit():
        return challenge_id
    legacy = int(challenge_id)
    match = next((c for c in challenges if c.legacy_id == legacy), None)
    return match.challenge_id if match else (submission.v5_challenge_id or challenge_id)


def submission_of(
    message: KafkaMessage, settings: RouterSettings, challenges: Iterable[ChallengeSettings]
) -> tuple[str, str, int] | None:
    """(submission id, v5 challenge id, member id) of a record the router routes, else None."""
    found = _classified(message, settings)
    if isinstance(found, Verdict):
        return None
    return str(found.id), _challenge_uuid(found, challenges), int(found.member_id)


def record_ids(
    message: KafkaMessage, settings: RouterSettings, challenges: Iterable[ChallengeSettings]
) -> tuple[str, ...]:
    """(submission id, challenge id) of a record, as far as the router can tell them (a rejected record keeps
    the ids its verdict names), for matching fault rules; () when it names none."""
    found = _classified(message, settings)
    if isinstance(found, Verdict):
        return (found.submission_id, found.challenge_id) if found.submission_id and found.challenge_id else ()
    return str(found.id), _challenge_uuid(found, challenges)
