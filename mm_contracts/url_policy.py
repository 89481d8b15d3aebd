"""The submission URL policy: one source for the router (at entry) and the challenge processor (before launch).

A submission `url` is fetched by a scorer inside our network, so an attacker-chosen URL could reach
internal endpoints (the instance-metadata address, loopback, the VPC) or carry credentials. Both stages
apply exactly these rules (decisions 014 and 076):

* at most `MAX_URL_LENGTH` characters, no whitespace, control characters or backslashes, parsable port;
* scheme `https` only; no userinfo (`user:pass@`); no port other than 443;
* a plain ASCII host name (`[a-z0-9.-]`, so no IDN look-alikes and no IPv6 literals) that is not an IP
  literal in any spelling the resolver accepts (`169.254.169.254`, `2852039166`, `0xa9.0xfe.0xa9.0xfe`,
  `0251.0376...`) and not a reserved local name (`localhost`, metadata service names);
* the host on the allow list (`.example.com` allows any subdomain of example.com, not the apex).

Pure functions over untrusted text: they return a refusal code (never raise) and never echo the URL.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from enum import StrEnum
from functools import lru_cache
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
HTTPS_PORT = 443

_HOST = re.compile(r"^[a-z0-9.-]+$")  # ASCII host names only (no IDN look-alikes, no IPv6 literals)
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")  # decimal, octal (leading 0) or hex spellings
# Whitespace (str.isspace's set: `\s` of a str pattern is the same), control characters, DEL and the backslash.
# One regex search instead of a Python loop over the characters: the router checks every record's URL.
_FORBIDDEN_CHARACTER = re.compile(r"[\s\x00-\x1f\x7f\\]")
# Names that resolve to the machine itself or to a cloud metadata service, whatever the allow list says.
_RESERVED_HOSTS = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata",
        "metadata.google.internal",
        "metadata.azure.internal",
    }
)
_RESERVED_SUFFIXES = (".localhost", ".internal", ".local")
# The common URL in one match: `https://` in any case, an ASCII host, an optional `:443`, then the path, query,
# fragment or the end. For such a URL `urlsplit` gives scheme https, a netloc with no userinfo, port None or 443
# and the host lower-cased as its hostname, so the rules give the same answer without parsing it (the router
# checks every record's URL; a parse is about 2 µs). Anything else takes the full parse. The scheme's letters
# are spelled out rather than IGNORECASE: under IGNORECASE `[a-z]` also matches U+017F and U+212A.
_PLAIN_HTTPS = re.compile(r"[Hh][Tt][Tt][Pp][Ss]://([A-Za-z0-9.-]+)(?::443)?(?=[/?#]|\Z)")


class UrlRefusal(StrEnum):
    """Why a URL is refused; the values are the router's reason codes (audit `reason`, metric `Reason`)."""

    URL_INVALID = "url_invalid"
    URL_NOT_HTTPS = "url_not_https"
    URL_HAS_USERINFO = "url_has_userinfo"
    URL_PORT_NOT_ALLOWED = "url_port_not_allowed"
    URL_HOST_IP_LITERAL = "url_host_ip_literal"
    URL_HOST_RESERVED = "url_host_reserved"
    URL_HOST_NOT_ALLOWED = "url_host_not_allowed"


def url_host(url: str) -> str:
    """The URL's host, lower-case, without a trailing dot ("" when there is none or it cannot be parsed)."""
    host = _plain_https_host(url)
    return host if host is not None else _parsed_url_host(url)


def _plain_https_host(url: str) -> str | None:
    """The host of a URL of the plain form (`_PLAIN_HTTPS`), as `urlsplit` would give it; None: not that form."""
    plain = _PLAIN_HTTPS.match(url)
    return plain.group(1).lower().rstrip(".") if plain is not None else None


def _parsed_url_host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return ""


def is_ip_literal(host: str) -> bool:
    """True for any spelling a resolver takes as an address: dotted quads, bare integers, octal and hex
    parts (inet_aton's forms), and a host whose last label is numeric (no real top-level domain is)."""
    host = host.rstrip(".")
    if not host:
        return False
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        return True
    try:
        socket.inet_aton(host)
    except (OSError, ValueError):
        return False
    return True


def is_reserved_host(host: str) -> bool:
    host = host.rstrip(".").lower()
    return host in _RESERVED_HOSTS or host.endswith(_RESERVED_SUFFIXES)


def url_shape_refusal(url: str) -> UrlRefusal | None:
    """Every rule that does not depend on configuration; None when the URL passes them."""
    if len(url) > MAX_URL_LENGTH:
        return UrlRefusal.URL_INVALID
    if _FORBIDDEN_CHARACTER.search(url):
        return UrlRefusal.URL_INVALID  # parsers disagree on `\` and on embedded whitespace
    host = _plain_https_host(url)
    if host is None:
        return _parsed_shape_refusal(url)
    if not host:
        return UrlRefusal.URL_INVALID
    return _host_refusal(host)


def _parsed_shape_refusal(url: str) -> UrlRefusal | None:
    """`url_shape_refusal` by `urlsplit`, for any URL (the fast path's answer must always equal this one's)."""
    if len(url) > MAX_URL_LENGTH or _FORBIDDEN_CHARACTER.search(url):
        return UrlRefusal.URL_INVALID
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return UrlRefusal.URL_INVALID
    if parts.scheme.lower() != "https":
        return UrlRefusal.URL_NOT_HTTPS
    if "@" in parts.netloc:
        return UrlRefusal.URL_HAS_USERINFO
    host = (parts.hostname or "").rstrip(".")
    if not host or not _HOST.match(host):
        return UrlRefusal.URL_INVALID
    if port is not None and port != HTTPS_PORT:
        return UrlRefusal.URL_PORT_NOT_ALLOWED
    return _host_refusal(host)


def _host_refusal(host: str) -> UrlRefusal | None:
    if is_ip_literal(host):
        return UrlRefusal.URL_HOST_IP_LITERAL
    if is_reserved_host(host):
        return UrlRefusal.URL_HOST_RESERVED
    return None


def host_is_allowed(host: str, allowed_hosts: Iterable[str]) -> bool:
    """`.example.com` allows any subdomain of example.com (not the apex); any other entry is exact."""
    host = host.lower().rstrip(".")
    exact, suffixes = _allow_list(allowed_hosts if isinstance(allowed_hosts, tuple) else tuple(allowed_hosts))
    if host in exact:
        return True
    return host.endswith(suffixes) and any(host.endswith(entry) and len(host) > len(entry) for entry in suffixes)


@lru_cache(maxsize=16)  # one allow list per environment, asked once per record
def _allow_list(allowed_hosts: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The allow list normalized once: exact host names, and the `.suffix` entries."""
    entries = {entry.strip().lower().rstrip(".") for entry in allowed_hosts}
    entries -= {"", "."}
    return (
        frozenset(entry for entry in entries if not entry.startswith(".")),
        tuple(sorted(entry for entry in entries if entry.startswith("."))),
    )


def url_refusal(url: str, allowed_hosts: Iterable[str]) -> UrlRefusal | None:
    """The whole policy: the shape rules, then the allow list. None when the URL may be fetched."""
    refusal = url_shape_refusal(url)
    if refusal is not None:
        return refusal
    if not host_is_allowed(url_host(url), allowed_hosts):
        return UrlRefusal.URL_HOST_NOT_ALLOWED
    return None


__all__ = [
    "MAX_URL_LENGTH",
    "UrlRefusal",
    "host_is_allowed",
    "is_ip_literal",
    "is_reserved_host",
    "url_host",
    "url_refusal",
    "url_shape_refusal",
]
