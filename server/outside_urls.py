"""The one check on a URL a user enters before the server calls it (a webhook target, a hot-list
feed): https only, plain http only to this machine's loopback (a receiver or a feed on the same
box), a host, a port that is a number, and no credentials inside the URL (they would end up in
logs and on pages: each caller keeps its own apart). Anything else (ftp:, file:, ...) is refused.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

MAX_URL = 2048
LOOPBACK = "loopback (127.0.0.0/8, ::1 or localhost)"


def url_problem(url: str, credentials_instead: str) -> str | None:
    """Why the server may not call `url`, or None. `credentials_instead`: what to do in place of
    credentials in the URL, said when the URL carries some."""
    if not url:
        return "give the URL"
    if len(url) > MAX_URL or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return f"the URL must be one line of at most {MAX_URL} characters without spaces"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        return f"the scheme {scheme + ':' if scheme else '(none)'} is not allowed: use https://"
    if "@" in parts.netloc:
        return f"the URL carries credentials (a user name or password): {credentials_instead}"
    if not parts.hostname:
        return "the URL names no host"
    try:
        parts.port  # noqa: B018 - reading it refuses "host:abc" and ports past 65535
    except ValueError:
        return "the URL's port is not a number from 0 to 65535"
    if scheme == "http" and not is_loopback(parts.hostname):
        return f"http:// is allowed only to {LOOPBACK}: reach {parts.hostname} over https://"
    return None


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost: it may resolve anywhere
        return False
