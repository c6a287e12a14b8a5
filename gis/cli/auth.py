"""`geoioc user|role|key|audit`: accounts, roles, API keys and the audit log from the shell.

Commands connect as the database owner (like migrations), not through the application role.
Every change is itself written to the audit log as done by `cli:<OS user>`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import psycopg
import typer
from rich.table import Table

from gis import audit
from gis.auth import api_keys, users
from gis.auth.errors import UserError
from gis.auth.roles import ROLES
from gis.cli.common import actor, console, err, fail
from gis.settings import get_settings

user_app = typer.Typer(help="User accounts (sign-in for the map, dashboards, QGIS).",
                       no_args_is_help=True)
role_app = typer.Typer(help=f"Roles of users ({', '.join(ROLES)}).", no_args_is_help=True)
key_app = typer.Typer(help="API keys for programs (QGIS, GDAL, scripts).", no_args_is_help=True)
audit_app = typer.Typer(help="Query the audit log (newest first).")

PASSWORD_ENV = "GEOIOC_NEW_PASSWORD"
RoleOpt = Annotated[list[str] | None, typer.Option("--role", "-r", help=f"One of: {', '.join(ROLES)}. "
                                                   "Repeat for several.")]


def _fail(message: str) -> NoReturn:
    raise fail(message)


@contextmanager
def _db() -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """An autocommit connection; input errors become one-line CLI errors."""
    try:
        with psycopg.connect(get_settings().database_url, autocommit=True) as conn:
            yield conn
    except (UserError, ValueError) as e:
        _fail(str(e))
    except psycopg.errors.UndefinedTable:
        _fail("the database has no user tables yet: run `geoioc db migrate`")


def _audit(conn: psycopg.Connection[Any], action: str, target: dict[str, Any]) -> None:
    audit.record(conn, None, action, username=actor(), credential="cli", target=target,
                 client="cli")


def _new_password(password: str | None) -> str:
    if password:
        return password
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _utc(value: dt.datetime | None) -> str:
    return "" if value is None else f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M}"


# --- users -------------------------------------------------------------------------------
@user_app.command("add")
def user_add(
    username: str,
    full_name: Annotated[str, typer.Option("--full-name", help="Họ và tên / full name.")] = "",
    role: RoleOpt = None,
    password: Annotated[str | None, typer.Option(
        help=f"Avoid on shared machines (shell history); scripts can set {PASSWORD_ENV}. "
             "Default: ask.")] = None,
) -> None:
    """Create a user (asks for the password unless given)."""
    s = get_settings()
    with _db() as conn:
        if users.get_account(conn, username) is not None:
            _fail(f"user {username.strip().lower()!r} already exists")
        account = users.add_user(conn, username, _new_password(password), full_name=full_name,
                                 roles=role or (), min_password_length=s.password_min_length)
        _audit(conn, "user_add", {"user": account.username, "roles": list(account.roles)})
    console.print(f"user [bold]{account.username}[/bold] created"
                  f" with roles {', '.join(account.roles) or '(none)'}")


@user_app.command("passwd")
def user_passwd(
    username: str,
    password: Annotated[str | None, typer.Option(help=f"Or set {PASSWORD_ENV}. Default: ask.")]
    = None,
) -> None:
    """Set a new password (ends the user's web sessions)."""
    with _db() as conn:
        account = users.require_account(conn, username)
        users.set_password(conn, account.username, _new_password(password),
                           min_password_length=get_settings().password_min_length)
        _audit(conn, "user_passwd", {"user": account.username})
    console.print(f"password of [bold]{account.username}[/bold] changed")


def _set_disabled(username: str, disabled: bool) -> None:
    with _db() as conn:
        account = users.require_account(conn, username)
        users.set_disabled(conn, account.username, disabled)
        _audit(conn, "user_disable" if disabled else "user_enable", {"user": account.username})
    console.print(f"user [bold]{account.username}[/bold] {'disabled' if disabled else 'enabled'}")


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable a user: passwords, tokens and API keys of the user stop working at once."""
    _set_disabled(username, True)


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Enable a disabled user again."""
    _set_disabled(username, False)


@user_app.command("list")
def user_list() -> None:
    """List users and their roles."""
    with _db() as conn:
        accounts = users.list_accounts(conn)
    table = Table("user", "họ tên / full name", "roles", "state", "created (UTC)",
                  "password changed (UTC)")
    for a in accounts:
        table.add_row(a.username, a.full_name, ", ".join(a.roles),
                      "[red]disabled[/red]" if a.disabled else "active", _utc(a.created_at),
                      _utc(a.password_changed_at))
    console.print(table)


# --- roles -------------------------------------------------------------------------------
@role_app.command("grant")
def role_grant(username: str, role: str) -> None:
    """Give USERNAME the role ROLE."""
    with _db() as conn:
        account = users.require_account(conn, username)
        if not users.grant_role(conn, account.username, role):
            _fail(f"user {account.username!r} already has role {role!r}")
        _audit(conn, "role_grant", {"user": account.username, "role": role.strip().lower()})
    console.print(f"role {role.strip().lower()} granted to [bold]{account.username}[/bold] "
                  "(web sessions get it at their next refresh)")


@role_app.command("revoke")
def role_revoke(username: str, role: str) -> None:
    """Take ROLE from USERNAME (effective at once, also for the user's API keys)."""
    with _db() as conn:
        account = users.require_account(conn, username)
        if not users.revoke_role(conn, account.username, role):
            _fail(f"user {account.username!r} does not have role {role!r}")
        _audit(conn, "role_revoke", {"user": account.username, "role": role.strip().lower()})
    console.print(f"role {role.strip().lower()} revoked from [bold]{account.username}[/bold]")


# --- API keys ----------------------------------------------------------------------------
@key_app.command("create")
def key_create(
    username: str,
    name: Annotated[str, typer.Option("--name", "-n", help="What or who uses the key.")],
    role: RoleOpt = None,
    days: Annotated[int | None, typer.Option(help="Valid for this many days (default from "
                                             "settings, 90).")] = None,
    camera: Annotated[list[str] | None, typer.Option(
        "--camera", help="Limit the key's pushes (heartbeats, snapshots, detections) to this "
                         "camera (code, e.g. CAM-0012; repeat for several): a camera's own key.")
    ] = None,
) -> None:
    """Create an API key for USERNAME; it is printed once and cannot be shown again."""
    from gis.sensors import cameras

    s = get_settings()
    with _db() as conn, conn.transaction():  # a key meant for cameras is never left unbound
        new = api_keys.create_key(conn, username, name, roles=role,
                                  days=days or s.api_key_default_days, max_days=s.api_key_max_days)
        if camera:
            codes = sorted({c.strip().upper() for c in camera})
            if cameras.bind_key(conn, new.prefix, codes) != len(codes):
                _fail(f"no camera with code(s) among {', '.join(codes)}")
        _audit(conn, "key_create", {"user": new.username, "prefix": new.prefix, "name": new.name,
                                    "roles": list(new.roles), "expires": new.expires_at.isoformat(),
                                    "cameras": sorted(camera) if camera else None})
    err.print(f"API key [bold]{new.prefix}[/bold] for {new.username} (roles: "
              f"{', '.join(new.roles) or 'none'}), expires {_utc(new.expires_at)} UTC. "
              "Store it now: it is not shown again.")
    # The key alone on stdout, so scripts can capture it.
    print(new.key)


@key_app.command("revoke")
def key_revoke(prefix: str) -> None:
    """Revoke the key with PREFIX (shown by `geoioc key list`)."""
    with _db() as conn:
        api_keys.revoke_key(conn, prefix)
        _audit(conn, "key_revoke", {"prefix": prefix.strip()})
    console.print(f"API key {prefix.strip()} revoked")


@key_app.command("list")
def key_list(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's keys.")]
    = None,
) -> None:
    """List API keys (prefixes only: the keys themselves are not stored)."""
    with _db() as conn:
        keys = api_keys.list_keys(conn, user)
    table = Table("prefix", "name", "user", "roles", "created (UTC)", "expires (UTC)",
                  "last used (UTC)", "state")
    colour = {"active": "green", "expired": "yellow", "revoked": "red"}
    for k in keys:
        state = k.status()
        table.add_row(k.prefix, k.name, k.username, ", ".join(k.roles), _utc(k.created_at),
                      _utc(k.expires_at), _utc(k.last_used_at),
                      f"[{colour[state]}]{state}[/{colour[state]}]")
    console.print(table)


# --- audit -------------------------------------------------------------------------------
@audit_app.callback(invoke_without_command=True)
def audit_query(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Username.")] = None,
    layer: Annotated[str | None, typer.Option("--layer", "-l", help="Layer id.")] = None,
    action: Annotated[str | None, typer.Option(
        "--action", "-a", help="read, write, sign_in, sign_in_failed, sign_out, key_create, ...")]
    = None,
    channel: Annotated[str | None, typer.Option(
        "--channel", "-c", help=f"The way out of a read: {', '.join(audit.CHANNELS)}.")] = None,
    since: Annotated[str | None, typer.Option(
        help="30m, 12h, 7d, 2w ago, or an ISO date/time (UTC).")] = None,
    until: Annotated[str | None, typer.Option(
        help="Before this instant (same forms as --since).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000,
                                       help="At most this many rows (a page).")] = 50,
    offset: Annotated[int, typer.Option(min=0, max=audit.MAX_OFFSET, help="Skip this many rows.")] = 0,
    before: Annotated[int | None, typer.Option(
        min=1, help="Only rows older than this id (the next page: the last id shown).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")]
    = False,
) -> None:
    """Who did what, when: newest first."""
    if channel and channel not in audit.CHANNELS:
        _fail(f"--channel: {channel!r} is not one of {', '.join(audit.CHANNELS)}")
    bounds: dict[str, dt.datetime | None] = {}
    for name, text in (("since", since), ("until", until)):
        try:
            bounds[name] = audit.parse_since(text) if text else None
        except (ValueError, OverflowError) as e:
            _fail(f"--{name}: {e}")
    with _db() as conn:
        entries = audit.query(conn, user=user, layer=layer, action=action, channel=channel,
                              since=bounds["since"], until=bounds["until"], before=before,
                              limit=limit, offset=offset)
    if as_json:
        for entry in entries:
            print(json.dumps({**entry.__dict__, "at": entry.at.isoformat()}, ensure_ascii=False))
        return
    table = Table("id", "time (UTC)", "user", "roles", "action", "request", "layer", "target",
                  "status", "client")
    for entry in entries:
        request = (" ".join(p for p in (entry.method, entry.path) if p)
                   + (f"?{entry.query}" if entry.query else ""))
        target = json.dumps(entry.target, ensure_ascii=False) if entry.target is not None else ""
        table.add_row(str(entry.id), f"{entry.at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}",
                      entry.username or "-",
                      ",".join(entry.roles), entry.action, request, entry.layer or "", target,
                      str(entry.status or ""), entry.client or "")
    console.print(table)
    if not entries:
        console.print("no matching audit entries")
    elif len(entries) == limit:
        console.print(f"next page: --before {entries[-1].id}")
