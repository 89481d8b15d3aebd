"""Topcoder stand-in: a loopback HTTP server for the Submission API v5 subset, review-api-v6 summations and the
Auth0 proxy, validating every request against Topcoder's OpenAPI specs and the proxy contract. Tests and the
local pipeline use it; it is never deployed.

By job: `server.py` (the `TopcoderStandIn` facade and its request dispatch), `v5.py`, `v6.py` (the two APIs),
`tokens.py` (the proxy and the bearer check), `faults.py` (injected faults), `spec.py` (the spec validation),
`records.py` (what they share)."""

from topcoder_standin.records import RecordedRequest
from topcoder_standin.server import TopcoderStandIn
from topcoder_standin.spec import default_spec_path, validate_proxy_body

__all__ = ["RecordedRequest", "TopcoderStandIn", "default_spec_path", "validate_proxy_body"]
