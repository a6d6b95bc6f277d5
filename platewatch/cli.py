"""The `platewatch` command. Every subcommand takes --data DIR (default ./data or $PLATEWATCH_DATA)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from pathlib import Path

import msgspec

from platewatch import hotlist_cli, reports
from server import audit_chain, backup, cameras, export, mfa, users, webhooks
from server.auth import new_password_problem, reset_password, unlock
from server.clock import now_ms
from server.hotlists import LIST_KINDS
from server.settings import ROLES, Settings, default_data_dir, load_settings
from server.store import queries, queries_webhooks
from server.store.db import Database
from worker.config import READERS


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", type=Path, default=None, help="data dir (DB, images, keys); default ./data")
    parser = argparse.ArgumentParser(prog="platewatch", description="Self-hosted license plate reader")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", parents=[common], help="run the web server")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)

    user = commands.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    user_add = user.add_parser("add", parents=[common], help="add a user (password prompted or from stdin)")
    user_add.add_argument("name")
    user_add.add_argument("--role", choices=ROLES, required=True)
    user_add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    user_reset = user.add_parser("mfa-reset", parents=[common],
                                 help="forget a user's authenticator app (lost phone); signs them out everywhere")
    user_reset.add_argument("name")
    user_password = user.add_parser("password", parents=[common],
                                    help="set a temporary password (forgotten one); signs them out everywhere")
    user_password.add_argument("name")
    user_password.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    user_unlock = user.add_parser("unlock", parents=[common],
                                  help="unlock an account failed sign-ins locked (the last admin's way back in)")
    user_unlock.add_argument("name")

    camera = commands.add_parser("camera", help="manage cameras").add_subparsers(dest="action", required=True)
    camera_add = camera.add_parser("add", parents=[common], help="add a camera; prints its token once")
    camera_add.add_argument("name")
    camera_add.add_argument("--location", default="")

    hotlist_cli.add_hotlist(commands, common)

    worker = commands.add_parser("worker", parents=[common], help="read plates from cameras")
    worker.add_argument("--config", type=Path, default=None)
    evaluate = commands.add_parser("eval", parents=[common], help="measure recognition on a labelled folder")
    evaluate.add_argument("dir", type=Path)
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--reader", choices=READERS, default=None,
                          help="plate: our own recognizer; ppocr: PP-OCRv4 views; ppocr+plate: both fused; "
                               "ppocr+plate+head (the default): both, with our head on PP-OCRv4 features")
    evaluate.add_argument("--verbose", action="store_true", help="list every wrong read")
    _add_backup(commands, common)
    _add_audit(commands, common)
    _add_webhook(commands, common)
    _add_export(commands, common)
    reports.add_report(commands, common)
    demo = commands.add_parser("demo", parents=[common], help="server + synthetic camera + sample hot list")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    return parser


def _add_backup(commands, common: argparse.ArgumentParser) -> None:
    backup_cmd = commands.add_parser("backup", parents=[common],
                                     help="write a consistent backup to DEST/platewatch-YYYYMMDD-HHMMSS")
    backup_cmd.add_argument("dest", type=Path, help="an existing folder (a mounted drive, a share)")
    backup_cmd.add_argument("--keep-days", type=_days, default=None,
                            help="delete this command's backups in DEST older than this; default retention_days")


def _add_export(commands, common: argparse.ArgumentParser) -> None:
    export_cmd = commands.add_parser("export", parents=[common],
                                     help="write a complete copy in open formats (JSON Lines, images, README, "
                                          "manifest) to DEST")
    export_cmd.add_argument("dest", type=Path, help="an empty or new folder")


def run_export(settings: Settings, dest: Path) -> int:
    try:
        result = export.export(settings, dest)
    except export.ExportError as exc:
        raise SystemExit(f"error: {exc}") from None
    counts = ", ".join(f"{n} {name}" for name, n in result.rows.items())
    gone = f" ({result.missing_images} gone meanwhile, purged)" if result.missing_images else ""
    print(f"exported {counts}; {result.images} images{gone}")
    print(result.dest)
    return 0


def _add_audit(commands, common: argparse.ArgumentParser) -> None:
    audit_cmd = commands.add_parser("audit", help="the audit log").add_subparsers(dest="action", required=True)
    verify = audit_cmd.add_parser("verify", parents=[common],
                                  help="check the audit log's hash chain: exit 1 naming the first entry that "
                                       "does not fit")
    verify.add_argument("--head", default=None,
                        help="a head saved earlier (from the transparency page): check the chain passes through it")


def _add_webhook(commands, common: argparse.ArgumentParser) -> None:
    webhook = commands.add_parser("webhook", help="send alerts to other systems").add_subparsers(
        dest="action", required=True)
    add = webhook.add_parser("add", parents=[common], help="POST every alert, signed, to URL; prints the "
                             "signing secret once, as the last line")
    add.add_argument("url", help="https://… (http:// only to loopback)")
    add.add_argument("--kinds", default="", help=f"only these list kinds, comma-separated ({', '.join(LIST_KINDS)}); "
                     "default every kind")
    webhook.add_parser("list", parents=[common], help="list webhook targets")
    remove = webhook.add_parser("remove", parents=[common], help="remove a webhook target and its pending retries")
    remove.add_argument("id", type=int)


async def change_webhooks(settings: Settings, args: argparse.Namespace) -> int:
    """`webhook add|list|remove`, audited as the Integrations page's changes are."""
    async with Database(settings.db_path) as db:
        if args.action == "list":
            targets = await queries_webhooks.list_webhooks(db.reader)
            for target in targets:
                print(f"{target['id']}\t{target['url']}\tkinds: {target['kinds'] or 'all'}\t"
                      f"{target['pending']} pending\tadded by {target['created_by']}")
            if not targets:
                print("no webhooks (add one with: platewatch webhook add URL)")
            return 0
        async with db.transaction() as conn:
            if args.action == "remove":
                if not await webhooks.remove_webhook(conn, "cli", args.id):
                    raise SystemExit(f"error: no webhook {args.id}")
                print(f"webhook {args.id} removed")
                return 0
            try:
                webhook_id, secret = await webhooks.add_webhook(conn, "cli", args.url, args.kinds)
            except webhooks.WebhookRefused as refused:
                raise SystemExit(f"error: {refused}") from None
    print(f"webhook {webhook_id} added for {args.url}; its signing secret is shown only now:")
    print(secret)
    return 0


async def verify_audit(settings: Settings, saved_head: str | None) -> int:
    async with Database(settings.db_path, readers=1) as db:
        report = await audit_chain.verify(db.reader, saved_head)
    if report.broken is not None:
        print(f"audit chain broken at entry #{report.broken.entry}: {report.broken.kind}: {report.broken.why}")
        return 1
    print(f"audit chain intact: {report.entries} entries, head {report.head}")
    if saved_head is not None and report.saved_head_at is None:
        print(f"saved head {saved_head} is not in the chain: entries up to it were changed or removed")
        return 1
    if saved_head is not None:
        print(f"saved head {saved_head} is entry #{report.saved_head_at}: nothing up to it has changed")
    return 0


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not days >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (0 or more)")
    return days


def settings_for(args: argparse.Namespace, **overrides) -> Settings:
    try:
        return load_settings(args.data if args.data is not None else default_data_dir(), **overrides)
    except msgspec.ValidationError as exc:  # e.g. an unknown time_zone: say which, without a traceback
        raise SystemExit(f"error: settings: {exc}") from None


async def add_user(settings: Settings, name: str, role: str, password: str) -> None:
    """The user's own password (typed or piped by them), so no change is forced at first sign-in."""
    try:
        async with Database(settings.db_path) as db, db.transaction() as conn:
            await users.add_user(conn, "cli", name, role, password, must_change=False)
    except users.UserRefused as refused:
        raise SystemExit(f"error: {refused}") from None


async def reset_mfa(settings: Settings, name: str) -> int | None:
    async with Database(settings.db_path) as db, db.transaction() as conn:
        user = await queries.user_by_name(conn, name)
        if user is None:
            raise SystemExit(f"error: no user '{name}'")
        return await mfa.reset(conn, user["id"], name, actor="cli")


async def reset_user_password(settings: Settings, name: str, password: str) -> int:
    async with Database(settings.db_path) as db, db.transaction() as conn:
        user = await queries.user_by_name(conn, name)
        if user is None:
            raise SystemExit(f"error: no user '{name}'")
        return await reset_password(conn, user["id"], name, password, actor="cli")


async def unlock_user(settings: Settings, name: str) -> bool:
    async with Database(settings.db_path) as db, db.transaction() as conn:
        if await queries.user_by_name(conn, name) is None:
            raise SystemExit(f"error: no user '{name}'")
        return await unlock(conn, name, "cli", now_ms(), settings.lockout)


async def add_camera(settings: Settings, name: str, location: str) -> str:
    try:
        async with Database(settings.db_path) as db, db.transaction() as conn:
            return await cameras.add_camera(conn, "cli", name, location)
    except cameras.CameraRefused as refused:
        raise SystemExit(f"error: {refused}") from None


def run_backup(settings: Settings, dest: Path, keep_days: float | None) -> int:
    keep_days = settings.retention_days if keep_days is None else keep_days
    try:
        result, failures = backup.backup_and_prune(settings, dest, keep_days)
    except backup.BackupError as exc:
        raise SystemExit(f"error: {exc}") from None
    for failure in failures:
        print(f"error: could not remove an old backup: {failure}", file=sys.stderr)
    gone = f" ({result.missing_images} named in the database were gone, purged meanwhile)" \
        if result.missing_images else ""
    print(f"backed up {result.reads} reads and {result.images} images{gone}")
    print(f"removed {result.pruned} backup(s) older than {keep_days:g} days from {dest}")
    print(result.folder)
    return 1 if failures else 0


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Again: "):
            raise SystemExit("error: passwords differ")
    return password


async def check_password(settings: Settings, name: str, password: str) -> str:
    """The password, or SystemExit naming the rule it breaks (the refusal audited)."""
    async with Database(settings.db_path) as db:
        if problem := await new_password_problem(db, password, "cli", name, "cli"):
            raise SystemExit(f"error: a password {problem}")
    return password


def serve(settings: Settings) -> None:
    import uvicorn

    from server.app import SHUTDOWN_GRACE_S, create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # No access log: a line per camera post is noise, and request logs are data that leaves the DB's rules.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info", access_log=False,
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S, server_header=False)  # no "Server: uvicorn"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = (args.command, getattr(args, "action", None))
    if args.command == "serve":
        serve(settings_for(args, host=args.host, port=args.port))
    elif command == ("user", "add"):
        password = asyncio.run(check_password(settings_for(args), args.name, read_password(args.password_stdin)))
        asyncio.run(add_user(settings_for(args), args.name, args.role, password))
        print(f"user '{args.name}' added as {args.role}")
    elif command == ("user", "mfa-reset"):
        ended = asyncio.run(reset_mfa(settings_for(args), args.name))
        print(f"user '{args.name}' has no two-factor sign-in to reset" if ended is None else
              f"two-factor sign-in reset for '{args.name}'; {ended} session(s) ended")
    elif command == ("user", "unlock"):
        unlocked = asyncio.run(unlock_user(settings_for(args), args.name))
        print(f"user '{args.name}' unlocked" if unlocked else f"user '{args.name}' is not locked")
    elif command == ("user", "password"):
        password = asyncio.run(check_password(settings_for(args), args.name, read_password(args.password_stdin)))
        ended = asyncio.run(reset_user_password(settings_for(args), args.name, password))
        print(f"password set for '{args.name}'; {ended} session(s) ended: give it to them in person")
    elif command == ("camera", "add"):
        token = asyncio.run(add_camera(settings_for(args), args.name, args.location))
        print(f"camera '{args.name}' added; its token is shown only now:")
        print(token)
    elif command == ("hotlist", "import"):
        return asyncio.run(hotlist_cli.import_hotlist(settings_for(args), args))
    elif command == ("audit", "verify"):
        return asyncio.run(verify_audit(settings_for(args), args.head))
    elif args.command == "webhook":
        return asyncio.run(change_webhooks(settings_for(args), args))
    elif command == ("report", "retention"):
        print(asyncio.run(reports.retention_report(settings_for(args), args.first, args.last)))
    elif command == ("report", "access-log"):
        asyncio.run(reports.write_access_log(settings_for(args), args.first, args.last, args.format))
    elif command == ("hotlist", "source"):
        asyncio.run(hotlist_cli.set_hotlist_source(settings_for(args), args))
    elif args.command == "backup":
        return run_backup(settings_for(args), args.dest, args.keep_days)
    elif args.command == "export":
        return run_export(settings_for(args), args.dest)
    elif args.command == "demo":
        from platewatch.demo import run_demo

        return run_demo(settings_for(args, port=args.port), duration=args.duration)
    elif args.command in ("worker", "eval"):
        return _run_worker_command(args)
    return 0


def _run_worker_command(args: argparse.Namespace) -> int:
    if args.command == "eval":
        from worker.recognize.eval import main as eval_main

        flags = [*(["--json"] if args.json else []), *(["--verbose"] if args.verbose else []),
                 *(["--reader", args.reader] if args.reader else [])]
        return eval_main([str(args.dir), *flags])
    from worker.__main__ import main as worker_main

    return worker_main([*(["--config", str(args.config)] if args.config else [])])


if __name__ == "__main__":
    sys.exit(main())
