"""The `callcenterd` command: run, migrate, backup, purge, user create|list|set-password,
check-config, asterisk export-queues."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from callcenterd import __version__
from callcenterd.api.server import ApiRunner
from callcenterd.app import create_app, purge_service
from callcenterd.contract.schemas import Password, UserCreate
from callcenterd.domain.users import Role
from callcenterd.errors import CallcenterError
from callcenterd.logs import configure_logging
from callcenterd.security import PasswordHasher, utcnow
from callcenterd.services.queues_export import export_queues
from callcenterd.services.users import UserService
from callcenterd.settings import ConfigError, Settings, env_names, load_settings
from callcenterd.store.db import Database
from callcenterd.store.users import LoginFailureRepository, OperatorRepository, UserRepository
from callcenterd.systemd import notify

log = structlog.get_logger("callcenterd")

DEFAULT_CONFIG = Path("/etc/callcenterd/callcenterd.toml")


def _config_path(given: str | None) -> Path | None:
    if given:
        return Path(given)
    env = os.environ.get("CALLCENTERD_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None


# --- run -----------------------------------------------------------------------------------
async def serve(settings: Settings) -> None:
    app = create_app(settings)
    runner = ApiRunner(app, handle_signals=False, access_log=None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        # Inside the try: a start-up step that fails still has the earlier ones stopped.
        await runner.setup()
        site = web.TCPSite(
            runner,
            settings.http.host,
            settings.http.port,
            shutdown_timeout=settings.http.shutdown_timeout,
        )
        await site.start()
        # What start-up built lives as long as the daemon: out of the collector's generations,
        # a full collection under load walks only what calls and requests made since, so its
        # pause in the routing path stays short.
        gc.freeze()
        log.info(
            "serving", url=f"http://{settings.http.host}:{settings.http.port}", version=__version__
        )
        notify("READY=1")
        await stop.wait()
        log.info("stopping")
        notify("STOPPING=1")
    finally:
        await runner.cleanup()
        log.info("stopped")


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        asyncio.run(serve(settings))
    except OSError as err:
        log.error("cannot_listen", host=settings.http.host, port=settings.http.port, error=str(err))
        return 1
    except CallcenterError as err:
        log.error("startup_failed", error=err.detail, code=err.code)
        return 1
    return 0


# --- store commands ------------------------------------------------------------------------
async def _with_db(settings: Settings, work: Callable[[Database], Awaitable[int]]) -> int:
    db = Database(settings.database_path)
    await db.open()
    try:
        await db.migrate()
        return await work(db)
    finally:
        await db.close()


def _user_service(db: Database, settings: Settings) -> UserService:
    return UserService(
        db,
        UserRepository(db),
        OperatorRepository(db),
        PasswordHasher(settings.auth.bcrypt_rounds),
        utcnow,
        LoginFailureRepository(db),
    )


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        print(f"database {settings.database_path} at schema version {await db.schema_version()}")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    destination = Path(args.destination)

    async def work(db: Database) -> int:
        await db.backup(destination)
        print(f"backed up {settings.database_path} to {destination}")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_asterisk_export_queues(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        text = await export_queues(db)
        if args.output in (None, "-"):
            sys.stdout.write(text)
            return 0
        destination = Path(args.output)
        partial = destination.with_name(destination.name + ".tmp")
        partial.write_text(text)
        partial.replace(destination)  # Asterisk never reads a half-written file
        print(f"wrote {destination}", file=sys.stderr)
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    """Delete (or --dry-run: count) what the [retention] settings say is too old."""

    async def work(db: Database) -> int:
        async with aiohttp.ClientSession() as session:
            report = await (await purge_service(settings, db, session)).purge(dry_run=args.dry_run)
        verb = "would delete" if report.dry_run else "deleted"
        limits = settings.retention
        kept = {
            "calls": limits.calls_days,
            "recordings": limits.recordings_days or limits.calls_days,
            "audit_log": limits.audit_log_days,
            "outbox": limits.outbox_days,
        }
        print(f"retention ({'dry run' if report.dry_run else 'purge'}), {verb}:")
        for kind, count in report.counts().items():
            if kind == "recordings_kept":
                continue
            days = kept.get(kind)
            note = (
                ""
                if days is None
                else (f" (older than {days} days)" if days else " (kept forever)")
            )
            print(f"  {kind:<12} {count}{note}")
        if report.recordings_kept:
            print(
                f"  {report.recordings_kept} recordings (and their calls) kept: Asterisk could not"
                " be asked to delete them; they go at the next run"
            )
        return 0

    return asyncio.run(_with_db(settings, work))


def _password_from(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat: "):
        raise SystemExit("passwords differ")
    return first


def cmd_user_create(settings: Settings, args: argparse.Namespace) -> int:
    try:
        body = UserCreate(
            username=args.username,
            email=args.email,
            name=args.name or args.username,
            password=_password_from(args),
            role=Role(args.role),
            extension=args.extension,
        )
    except ValidationError as err:
        for item in err.errors():
            where = ".".join(str(p) for p in item["loc"]) or "input"
            print(f"error: {where}: {item['msg']}", file=sys.stderr)
        return 2

    async def work(db: Database) -> int:
        user = await _user_service(db, settings).create(body, actor=None)
        print(f"created {user.role.value} {user.username} ({user.id})")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_user_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        for user in await _user_service(db, settings).list(0, 100_000, None):
            state = "active" if user.is_active else "inactive"
            print(f"{user.username:<24} {user.role.value:<11} {state:<9} {user.email}")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_user_set_password(settings: Settings, args: argparse.Namespace) -> int:
    try:
        # The API's password rule: at least 6 characters, at most 72 bytes (bcrypt's limit).
        password = TypeAdapter(Password).validate_python(_password_from(args))
    except ValidationError as err:
        for item in err.errors():
            print(f"error: password: {item['msg']}", file=sys.stderr)
        return 2

    async def work(db: Database) -> int:
        await _user_service(db, settings).set_password(args.username, password)
        print(f"password of {args.username} changed; their tokens are revoked")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_user_unlock(settings: Settings, args: argparse.Namespace) -> int:
    """Lift a lockout after failed logins: the way back in for a locked-out sole admin."""

    async def work(db: Database) -> int:
        users = _user_service(db, settings)
        await users.unlock((await users.by_username(args.username)).id, actor=None)
        print(f"{args.username} unlocked")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_check_config(settings: Settings, args: argparse.Namespace) -> int:
    print("configuration is valid")
    print(f"  http:     {settings.http.host}:{settings.http.port}")
    print(f"  database: {settings.database_path}")
    print(f"  state:    {settings.state_dir}")
    print(f"  ari:      {settings.ari.url} user={settings.ari.username} app={settings.ari.app}")
    print(f"  ami:      {settings.ami.host}:{settings.ami.port} user={settings.ami.username}")
    print(f"  timezone: {settings.timezone}")
    known = {name for name, _ in env_names()} | {"CALLCENTERD_CONFIG", "CALLCENTERD_E2E"}
    unknown = sorted(k for k in os.environ if k.startswith("CALLCENTERD_") and k not in known)
    for name in unknown:
        print(f"warning: {name} is not a known setting (see `callcenterd check-config --env`)")
    if args.env:
        for name, path in env_names():
            print(f"  {name:<42} {'.'.join(path)}")
    return 0


# --- parser --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callcenterd", description="Contact-center engine for Asterisk"
    )
    parser.add_argument("--version", action="version", version=f"callcenterd {__version__}")
    parser.add_argument(
        "--config",
        help=f"TOML config file (default: $CALLCENTERD_CONFIG or {DEFAULT_CONFIG} when it exists)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("--config", help=argparse.SUPPRESS, dest="sub_config")
    run.set_defaults(func=cmd_run)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    backup = commands.add_parser("backup", help="consistent online copy of the database")
    backup.add_argument("destination", help="file to write (replaced when complete)")
    backup.set_defaults(func=cmd_backup)
    check = commands.add_parser("check-config", help="validate the configuration")
    check.add_argument("--env", action="store_true", help="list every environment variable")
    check.set_defaults(func=cmd_check_config)

    purge = commands.add_parser(
        "purge", help="delete what is older than the [retention] settings keep"
    )
    purge.add_argument(
        "--dry-run", action="store_true", help="print what would be deleted, delete nothing"
    )
    purge.set_defaults(func=cmd_purge)

    user = commands.add_parser("user", help="manage users").add_subparsers(
        dest="user_command", required=True
    )
    create = user.add_parser("create", help="create a user")
    create.add_argument("username")
    create.add_argument("--email", required=True)
    create.add_argument("--name")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.OPERATOR.value)
    create.add_argument("--extension", help="required for operators (3-5 digits)")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    create.set_defaults(func=cmd_user_create)
    user.add_parser("list", help="list users").set_defaults(func=cmd_user_list)
    set_password = user.add_parser("set-password", help="set a user's password")
    set_password.add_argument("username")
    set_password.add_argument("--password-stdin", action="store_true")
    set_password.set_defaults(func=cmd_user_set_password)
    unlock = user.add_parser("unlock", help="lift a user's lockout after failed logins")
    unlock.add_argument("username")
    unlock.set_defaults(func=cmd_user_unlock)

    asterisk = commands.add_parser("asterisk", help="the Asterisk side").add_subparsers(
        dest="asterisk_command", required=True
    )
    export = asterisk.add_parser(
        "export-queues",
        help="write a queues.conf fragment from the stored queues (the Queue() fallback)",
    )
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    export.set_defaults(func=cmd_asterisk_export_queues)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = getattr(args, "sub_config", None) or args.config
    try:
        settings = load_settings(_config_path(config))
    except ConfigError as err:
        print(f"callcenterd: {err}", file=sys.stderr)
        return 2
    configure_logging(settings.log.format, settings.log.level)
    try:
        code: int = args.func(settings, args)
    except CallcenterError as err:
        print(f"callcenterd: {err.detail}", file=sys.stderr)
        return 1
    return code
