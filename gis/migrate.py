"""Schema migrations (alembic) driven from Python, so the CLI and tests need no alembic.ini."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from gis.settings import PROJECT_ROOT, get_settings


def sqlalchemy_url(url: str | None = None) -> str:
    url = url or get_settings().database_url
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


def upgrade(revision: str = "head", url: str | None = None) -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(revision: str = "base", url: str | None = None) -> None:
    command.downgrade(alembic_config(url), revision)


def current(url: str | None = None) -> str | None:
    """The revision the database is at (None on an empty database)."""
    import psycopg

    from gis.settings import get_settings

    with psycopg.connect(url or get_settings().database_url) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()[0]
        if not exists:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None
