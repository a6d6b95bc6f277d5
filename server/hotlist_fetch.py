"""Hot-list sources on the web: an HTTPS URL a state or vendor publishes its feed at, with optional
bearer or basic credentials.

The URL is checked before the server ever calls it (https; plain http only to this machine; no
user name or password inside it, where it would show on pages and in the audit log). Credentials
live in the data dir, a file per source readable by the server's user only, not in the database:
the database is read by every page and copied whole by backups and exports, and a secret in it
would travel with them. They are never logged, audited or shown back; pages only say which kind
is stored. A download is streamed with a size limit and timeouts, and asks with the last ETag /
Last-Modified, so an unchanged feed costs one small answer and counts as "nothing new".
"""

from __future__ import annotations

import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from server import outside_urls
from server.settings import Settings

CREDENTIALS_DIR = "hotlist_credentials"  # in the data dir: one 0600 file per source, named by its id
AUTH_KINDS = ("", "bearer", "basic")  # "": none
MAX_SECRET = 4096


class UrlRefused(ValueError):
    """A source URL the server will not call; the message names what is wrong."""


class FetchFailed(ValueError):
    """The feed's server answered, but not with a feed (an error status, a redirect, too big)."""


class NotChanged(Exception):
    """The feed's server says the feed is the one imported last time (304, or the same ETag)."""


def is_url(location: str) -> bool:
    return "://" in location


def check_url(url: str) -> str:
    """The URL, checked (server/outside_urls.py); UrlRefused says what is wrong."""
    url = url.strip()
    if problem := outside_urls.url_problem(url, "give a bearer token or basic credentials instead, which "
                                                "are stored apart and never shown"):
        raise UrlRefused(problem)
    return url


# --- credentials -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Credentials:
    kind: str  # "bearer" or "basic"
    secret: str  # the token, or the password
    user: str = ""

    def __repr__(self) -> str:  # never print the secret, even in a traceback's locals
        return f"Credentials(kind={self.kind!r})"

    def check(self) -> Credentials:
        if self.kind not in AUTH_KINDS[1:]:
            raise UrlRefused(f"credentials of kind {self.kind!r}: give bearer or basic")
        if not self.secret or len(self.secret) > MAX_SECRET or any(c in self.secret for c in "\r\n"):
            raise UrlRefused(f"the {'token' if self.kind == 'bearer' else 'password'} must be one line of 1 to "
                             f"{MAX_SECRET} characters")
        if self.kind == "basic" and (not self.user or ":" in self.user or len(self.user) > 200):
            raise UrlRefused("basic credentials need a user name of 1 to 200 characters without ':'")
        return self


def _credentials_path(data_dir: Path, source_id: int) -> Path:
    return data_dir / CREDENTIALS_DIR / f"source-{int(source_id)}.json"


def store_credentials(data_dir: Path, source_id: int, credentials: Credentials | None) -> None:
    """Keep (or, given None, forget) a source's credentials: written whole to a private temp file,
    then renamed into place, so a refresh never reads half a secret."""
    path = _credentials_path(data_dir, source_id)
    if credentials is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = json.dumps({"kind": credentials.kind, "user": credentials.user, "secret": credentials.secret})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the mode given to os.open is filtered by the umask
        os.write(fd, body.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load_credentials(data_dir: Path, source_id: int) -> Credentials | None:
    try:
        stored = json.loads(_credentials_path(data_dir, source_id).read_text())
    except FileNotFoundError:
        return None
    return Credentials(stored["kind"], stored["secret"], stored.get("user", ""))


def credentials_kind(data_dir: Path, source_id: int) -> str:
    """What a page may say about a source's credentials: "bearer", "basic" or "" (none)."""
    credentials = load_credentials(data_dir, source_id)
    return credentials.kind if credentials else ""


# --- fetching ----------------------------------------------------------------------------------

def validators_of(response: httpx.Response) -> str:
    """What to ask with next time (JSON; empty where the feed's server gives neither)."""
    found = {k: response.headers[h] for k, h in (("etag", "etag"), ("last_modified", "last-modified"))
             if h in response.headers}
    return json.dumps(found, sort_keys=True) if found else ""


def _conditional_headers(last: str) -> dict[str, str]:
    try:
        seen = json.loads(last) if last.startswith("{") else {}
    except ValueError:
        seen = {}
    headers = {}
    if seen.get("etag"):
        headers["If-None-Match"] = seen["etag"]
    if seen.get("last_modified"):
        headers["If-Modified-Since"] = seen["last_modified"]
    return headers


def _client(settings: Settings) -> httpx.AsyncClient:
    verify: ssl.SSLContext | bool = True
    if settings.hotlist_ca_file:  # a department's own CA (or a test's): trusted besides the system's
        verify = ssl.create_default_context()
        verify.load_verify_locations(cafile=settings.hotlist_ca_file)
    timeout = httpx.Timeout(settings.hotlist_fetch_timeout_s, connect=min(10.0, settings.hotlist_fetch_timeout_s))
    # No redirects: the URL checked is the URL called (a redirect could lead to plain http or elsewhere).
    return httpx.AsyncClient(timeout=timeout, verify=verify, follow_redirects=False,
                             headers={"User-Agent": "Platewatch hot-list refresh"})


async def fetch(url: str, last: str, credentials: Credentials | None, settings: Settings) -> tuple[str, bytes]:
    """(validators, body) of the feed at `url`; NotChanged when it is the one imported last time
    (`last`: the validators stored then), FetchFailed or httpx.HTTPError otherwise."""
    url = check_url(url)  # again: the stored URL is what is called
    headers = _conditional_headers(last)
    auth = None
    if credentials and credentials.kind == "bearer":
        headers["Authorization"] = f"Bearer {credentials.secret}"
    elif credentials:
        auth = httpx.BasicAuth(credentials.user, credentials.secret)
    limit = settings.hotlist_max_download_bytes
    async with _client(settings) as client, client.stream("GET", url, headers=headers, auth=auth) as response:
        if response.status_code == 304:
            raise NotChanged("the feed has not changed since the last import")
        if response.status_code != 200:
            hint = (" (redirects are not followed: give the final URL)" if response.is_redirect else
                    " (check the source's credentials)" if response.status_code in (401, 403) else "")
            raise FetchFailed(f"{urlsplit(url).hostname} answered {response.status_code} "
                              f"{response.reason_phrase}{hint}")
        validators = validators_of(response)
        if validators and validators == last:
            raise NotChanged("the feed has not changed since the last import")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchFailed(f"the feed is {int(declared)} bytes, over hotlist_max_download_bytes ({limit})")
        body = bytearray()
        async for chunk in response.aiter_bytes():  # decoded: a gzip bomb is stopped too
            body += chunk
            if len(body) > limit:
                raise FetchFailed(f"the feed is over hotlist_max_download_bytes ({limit}); download stopped")
    return validators, bytes(body)
