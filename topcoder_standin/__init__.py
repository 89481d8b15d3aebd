"""Topcoder stand-in: a loopback HTTP server for the Submission API v5 subset and the Auth0 proxy,
validating every request against Topcoder's OpenAPI spec and the proxy contract. Tests and the local
pipeline use it; it is never deployed."""

from topcoder_standin.server import RecordedRequest, TopcoderStandIn
from topcoder_standin.spec import default_spec_path, validate_proxy_body

__all__ = ["RecordedRequest", "TopcoderStandIn", "default_spec_path", "validate_proxy_body"]
