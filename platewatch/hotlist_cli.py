"""`platewatch hotlist import|source`: a hot list replaced from a file once, or refreshed on schedule
from a file, a folder or an https URL. The rules live in server/hotlists.py, hotlist_formats.py and
hotlist_sources.py; this module reads the flags and prints what happened."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from server.hotlist_fetch import Credentials
from server.hotlist_sources import DEFAULT_EVERY_HOURS, DEFAULT_MAX_AGE_HOURS, KEEP, SourceRefused, set_source
from server.hotlists import (LIST_KINDS, OTHER_PROCESS_PAUSE_S, ImportSuperseded, InvalidHotlist,
                             ListWouldShrink, import_list, list_format, parse_list, parse_priority)
from server.settings import Settings
from server.store.db import Database


def add_hotlist(commands, common: argparse.ArgumentParser) -> None:
    """`hotlist import` and `hotlist source`, with the file-layout and credential flags."""
    hotlist = commands.add_parser("hotlist", help="manage hot lists").add_subparsers(dest="action", required=True)
    hl_import = hotlist.add_parser("import", parents=[common],
                                   help="replace a hot list from a file: CSV with a header, delimited or fixed-width")
    hl_import.add_argument("file", type=Path)
    hl_import.add_argument("--list", dest="list_name", required=True)
    hl_import.add_argument("--kind", choices=LIST_KINDS, default=None)
    hl_import.add_argument("--source", default=None, help="where the list comes from, e.g. 'State NCIC extract'")
    hl_import.add_argument("--skip-bad", action="store_true", help="import the good lines even if some are bad")
    hl_import.add_argument("--force", action="store_true",
                           help="import even if it would empty the list or remove more than half of it")
    add_format_options(hl_import)
    hl_source = hotlist.add_parser("source", parents=[common],
                                   help="refresh a hot list on schedule from a file, the newest file in a folder, "
                                        "or an https URL")
    hl_source.add_argument("name", help="the source's name, e.g. nh-state-feed")
    hl_source.add_argument("--list", dest="list_name", required=True)
    hl_source.add_argument("--from", dest="location", required=True, help="a file, a folder, or an https:// URL")
    hl_source.add_argument("--every", type=float, default=DEFAULT_EVERY_HOURS, help="hours between looks (default 24)")
    hl_source.add_argument("--max-age", type=float, default=DEFAULT_MAX_AGE_HOURS,
                           help="hours after which the list is marked stale (default 26)")
    hl_source.add_argument("--kind", choices=LIST_KINDS, default=None)
    add_format_options(hl_source)
    add_credential_options(hl_source)


def add_format_options(command: argparse.ArgumentParser) -> None:
    """How a hot-list file is laid out (see server/hotlist_formats.py); checked by list_format."""
    command.add_argument("--format", default=None, help="csv (with a header; the default), delimited (no header: "
                         "give --columns) or fixed (fixed-width: give --fixed)")
    command.add_argument("--delimiter", default=None, help="for csv and delimited: , ; : | or tab (default ,)")
    command.add_argument("--columns", default=None,
                         help="each column's field, e.g. plate,state,reason,-,priority (- skips a column); fields: "
                              "plate, state, plate_type, reason, priority, expires, record, note")
    command.add_argument("--fixed", default=None, help="field map, 1-based inclusive: plate:1-10,state:11-12,...")
    command.add_argument("--encoding", default=None, help="utf-8 (default) or latin-1")
    command.add_argument("--priority", default=None,
                         help="the list's default priority for entries without one: 0-100 or low/medium/high")


def add_credential_options(command: argparse.ArgumentParser) -> None:
    """A URL source's credentials: never on the command line itself (ps and shell history show it)."""
    given = command.add_mutually_exclusive_group()
    given.add_argument("--bearer-file", type=Path, default=None, help="a file holding the bearer token")
    given.add_argument("--basic", metavar="USER", default=None,
                       help="basic credentials for USER; the password from --password-file, else prompted "
                            "(or one line of standard input)")
    given.add_argument("--no-credentials", action="store_true", help="forget the source's stored credentials")
    command.add_argument("--password-file", type=Path, default=None, help="a file holding the basic password")


async def import_hotlist(settings: Settings, args: argparse.Namespace) -> int:
    fmt, priority = _format_options(args)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise SystemExit(f"error: cannot read {args.file}: {exc.strerror}") from None
    parsed = parse_list(data, fmt, added_by=f"import:{args.file.name}", zone=settings.zone)
    for error in parsed.errors:
        print(f"{args.file}: {error}", file=sys.stderr)
    async with Database(settings.db_path) as db:
        try:
            result = await import_list(
                db, args.list_name, parsed, actor="cli", kind=args.kind, source=args.source,
                skip_bad=args.skip_bad, force=args.force, settings=settings, pause_s=OTHER_PROCESS_PAUSE_S,
                list_format=fmt if _format_given(args) else None, default_priority=priority,
            )
        except InvalidHotlist as exc:
            print(f"error: {len(exc.errors)} bad line(s); nothing imported (use --skip-bad to import the rest)",
                  file=sys.stderr)
            return 1
        except ListWouldShrink as exc:
            print(f"error: {args.file} for '{args.list_name}': {exc}; nothing imported "
                  "(use --force to import it anyway)", file=sys.stderr)
            return 1
        except ImportSuperseded as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"hot list '{args.list_name}': {result.total} entries ({result.added} added, {result.removed} removed, "
          f"{result.skipped} bad lines skipped); {len(result.retro_alerts)} retro alert(s)")
    return 0


def _format_options(args: argparse.Namespace):
    """(ListFormat, default priority) from the format flags; a bad one exits naming it."""
    try:
        return (list_format(args.format, args.delimiter, args.columns, args.fixed, args.encoding),
                parse_priority(args.priority or ""))
    except ValueError as exc:  # a FormatError, or a priority that is not one
        raise SystemExit(f"error: {exc}") from None


def _format_given(args: argparse.Namespace) -> bool:
    """A plain `hotlist import FILE` (our CSV) leaves the list's remembered format, which its
    scheduled source and the web form use, as it was."""
    return any((args.format, args.delimiter, args.columns, args.fixed, args.encoding))


def _secret_file(path: Path) -> str:
    try:
        return path.read_text().strip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"error: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _credentials(args: argparse.Namespace):
    """Credentials from the flags: new ones, None (--no-credentials), or KEEP (none given)."""
    if args.password_file and not args.basic:
        raise SystemExit("error: --password-file goes with --basic USER")
    if args.no_credentials:
        return None
    if args.bearer_file:
        return Credentials("bearer", _secret_file(args.bearer_file))
    if args.basic:
        if args.password_file:
            password = _secret_file(args.password_file)
        elif sys.stdin.isatty():
            password = getpass.getpass(f"Password for {args.basic}: ")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        return Credentials("basic", password, args.basic)
    return KEEP


async def set_hotlist_source(settings: Settings, args: argparse.Namespace) -> None:
    fmt, priority = _format_options(args)
    credentials = _credentials(args)
    try:
        async with Database(settings.db_path) as db:
            await set_source(db, args.name, args.list_name, args.location, actor="cli", every_hours=args.every,
                             max_age_hours=args.max_age, list_format=fmt, default_priority=priority, kind=args.kind,
                             data_dir=settings.data_dir, credentials=credentials)
    except SourceRefused as refused:
        raise SystemExit(f"error: {refused}") from None
    print(f"hot list '{args.list_name}' refreshes from {args.location} every {args.every:g} h "
          f"({fmt.format}); the server looks within a minute")


