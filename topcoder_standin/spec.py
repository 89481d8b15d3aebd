"""Request validation against Topcoder's own Submission API v5 OpenAPI spec (openapi-core 0.23), request and
response validation against the review-api-v6 summations spec (`review-api-v6-summations.yaml`, served under
/v6), and the Auth0 proxy's body contract (auth0-proxy-contract.json).

One normalisation is applied to the spec, and only the one OpenAPI 3.0 itself prescribes: `readOnly` is
meaningful on *properties* only, and a readOnly property listed in `required` is required in responses
only. Topcoder's spec composes entities with `allOf` (`Review` = {id readOnly} + PartiallyReview +
Auditable, with `Auditable` itself marked readOnly and `id` in the top-level `required`); openapi-core
checks `required` and schema-level `readOnly` per subschema, so taken literally every POST /reviews body
would be rejected for lacking `id` and for "writing" the Auditable object. We therefore (1) drop
schema-level `readOnly` from component schemas and (2) drop readOnly properties from `required`. Sending a
read-only property (`id`, `created`, ...) is still a violation. See decision 033.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.validation.request.exceptions import ParameterValidationError, SecurityValidationError
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_FILE_NAME = "submissions-api-v5-swagger.yaml"
REVIEW_TYPES_FILE_NAME = "submissions-api-v5.ReviewTypes.seed.json"
SPEC_ENV_VAR = "MM_TOPCODER_SPEC"
SPECS_DIR = Path(__file__).resolve().parent / "specs"
API_PREFIX = "/v5"  # the spec has no `servers`; Topcoder serves it under /v5
V6_SPEC_FILE_NAME = "review-api-v6-summations.yaml"
V6_SPEC_ENV_VAR = "MM_TOPCODER_V6_SPEC"
V6_API_PREFIX = "/v6"  # its `servers` are Topcoder's hosts; the stand-in serves it under /v6 on loopback


def default_spec_path() -> Path:
    """`$MM_TOPCODER_SPEC`, else the copy kept in the repository (`topcoder_standin/specs/`, with provenance)."""
    override = os.environ.get(SPEC_ENV_VAR)
    if override:
        return Path(override)
    return SPECS_DIR / SPEC_FILE_NAME


def default_v6_spec_path() -> Path:
    """`$MM_TOPCODER_V6_SPEC`, else the copy kept in the repository (`topcoder_standin/specs/`)."""
    override = os.environ.get(V6_SPEC_ENV_VAR)
    if override:
        return Path(override)
    return SPECS_DIR / V6_SPEC_FILE_NAME


def _resolve(spec: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part]
    return _resolve(spec, node)


def _read_only_properties(spec: Mapping[str, Any], schema: Mapping[str, Any]) -> set[str]:
    schema = _resolve(spec, schema)
    names = {
        name
        for name, prop in (schema.get("properties") or {}).items()
        if isinstance(prop, Mapping) and _resolve(spec, prop).get("readOnly") is True
    }
    for part in schema.get("allOf") or []:
        names |= _read_only_properties(spec, part)
    return names


def normalise_read_only(spec: dict[str, Any]) -> dict[str, Any]:
    """Apply OpenAPI 3.0's readOnly rules for request validation (see module docstring)."""
    spec = copy.deepcopy(spec)
    original = copy.deepcopy(spec)  # resolve against the unmodified spec
    schemas: dict[str, Any] = spec.get("components", {}).get("schemas", {})
    for schema in schemas.values():
        if not isinstance(schema, dict):
            continue
        schema.pop("readOnly", None)  # schema-level readOnly: not meaningful in OAS 3.0
        required = schema.get("required")
        if isinstance(required, list):
            read_only = _read_only_properties(original, schema)
            kept = [name for name in required if name not in read_only]
            if kept:
                schema["required"] = kept
            else:
                schema.pop("required")
    return spec


@functools.cache
def load_openapi(spec_path: str, prefix: str = API_PREFIX) -> OpenAPI:
    """Parsed and normalised spec, served under `prefix` (cached: parsing takes ~0.3 s). The normalisation
    changes nothing in a spec without readOnly members (the v6 one)."""
    with open(spec_path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    spec = normalise_read_only(raw)
    spec["servers"] = [{"url": prefix}]
    return OpenAPI.from_dict(spec)


class _Request:
    """openapi-core's `Request` protocol over what the HTTP handler received."""

    def __init__(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes | None) -> None:
        self.method = method.lower()
        self.path = path
        self.host_url = "http://standin.local"
        self.body = body
        self.content_type = (headers.get("Content-Type") or "application/json").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict([(k, v) for k, vs in parse_qs(query).items() for v in vs]),
            header=Headers(list(headers.items())),
        )


def _describe(error: Exception) -> Iterator[str]:
    cause = error.__cause__
    schema_errors = getattr(cause, "schema_errors", None) or getattr(error, "schema_errors", None)
    if schema_errors:
        is_parameter = isinstance(error, ParameterValidationError)
        prefix = str(error) if is_parameter else str(error).split(":", 1)[0]
        for schema_error in schema_errors:
            message = getattr(schema_error, "message", schema_error)
            if is_parameter:
                yield f"{prefix}: {message}"
            else:
                where = "/".join(str(p) for p in getattr(schema_error, "absolute_path", [])) or "body"
                yield f"{prefix}: {where}: {message}"
        return
    text = str(error)
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text}: {cause}"
    yield text


class ApiValidation:
    """Result of validating one API request against the spec."""

    def __init__(self, errors: list[str], *, route_found: bool, security_ok: bool) -> None:
        self.errors = errors
        self.route_found = route_found
        self.security_ok = security_ok  # an Authorization: Bearer header is present

    @property
    def valid(self) -> bool:
        return not self.errors


def validate_api_request(
    openapi: OpenAPI, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes | None
) -> ApiValidation:
    request = _Request(method, path, query, headers, body)
    errors: list[str] = []
    route_found = True
    security_ok = True
    for error in openapi.iter_request_errors(request):
        if isinstance(error, PathNotFound | OperationNotFound):
            route_found = False
        if isinstance(error, SecurityValidationError):
            security_ok = False
        errors.extend(_describe(error))
    return ApiValidation(errors, route_found=route_found, security_ok=security_ok)


class _Response:
    """openapi-core's `Response` protocol over what the stand-in is about to answer."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
        self.status_code = status
        self.data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        self.content_type = "application/json"
        self.headers = Headers(list(headers.items()))


def validate_api_response(
    openapi: OpenAPI,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    status: int,
    response_body: Any,
    response_headers: Mapping[str, str],
) -> list[str]:
    """What is wrong with the answer (status, JSON body) to a request, by the spec. An error status the
    operation does not declare (an injected 500, a 429) is not checked: the spec says nothing about it."""
    request = _Request(method, path, query, headers, body)
    errors: list[str] = []
    for error in openapi.iter_response_errors(request, _Response(status, response_body, response_headers)):
        if isinstance(error, ResponseNotFound) and not 200 <= status < 300:
            continue
        errors.extend(_describe(error))
    return errors


# --- Auth0 proxy contract ------------------------------------------------------------------------
_PROXY_STRING_FIELDS = ("grant_type", "client_id", "client_secret", "auth0_url")
_PROXY_KNOWN_FIELDS = frozenset(
    {*_PROXY_STRING_FIELDS, "audience", "scope", "fresh_token", "provider", "content_type", "expires_in"}
)


def validate_proxy_body(body: Any) -> list[str]:
    """The proxy's joi rules (auth0-proxy-contract.json). Messages name fields, never their values."""
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    errors = [*_proxy_credential_errors(body), *_proxy_option_errors(body)]
    errors.extend(f'"{name}" is not allowed' for name in sorted(set(body) - _PROXY_KNOWN_FIELDS))
    return errors


def _proxy_credential_errors(body: Mapping[str, Any]) -> list[str]:
    """The required strings, the grant type, and exactly one of audience or scope."""
    errors: list[str] = []
    for name in _PROXY_STRING_FIELDS:
        value = body.get(name)
        if value is None:
            errors.append(f'"{name}" is required')
        elif not isinstance(value, str) or not value:
            errors.append(f'"{name}" must be a non-empty string')
    if isinstance(body.get("grant_type"), str) and body["grant_type"] != "client_credentials":
        errors.append('"grant_type" must be "client_credentials"')
    has_audience, has_scope = body.get("audience") is not None, body.get("scope") is not None
    if has_audience == has_scope:
        errors.append('exactly one of "audience" or "scope" is required')
    return errors


def _proxy_option_errors(body: Mapping[str, Any]) -> list[str]:
    """The optional fields' types and values."""
    errors = [
        f'"{name}" must be a string'
        for name in ("audience", "scope", "provider")
        if body.get(name) is not None and not isinstance(body[name], str)
    ]
    if "fresh_token" in body and not isinstance(body["fresh_token"], bool):
        errors.append('"fresh_token" must be a boolean')
    if "content_type" in body and body["content_type"] not in ("application/json", "application/x-www-form-urlencoded"):
        errors.append('"content_type" must be application/json or application/x-www-form-urlencoded')
    expires_in = body.get("expires_in")
    if "expires_in" in body and (
        isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in < 1
    ):
        errors.append('"expires_in" must be a number >= 1')
    return errors
