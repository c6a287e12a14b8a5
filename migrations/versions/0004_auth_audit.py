"""Users, roles, API keys, sign-in sessions and the append-only audit log; privileges of the
application role.

The running application connects as `geoioc` (the owner) and switches to `geoioc_app` (see
gis/db.py), which may read and write data but only SELECT and INSERT the audit log, so a bug or
an injected statement in the application cannot rewrite history. A trigger also stops the owner
from updating, deleting or truncating audit rows (dropping the table in a downgrade still works).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The roles a user can hold ("anonymous" is the absence of a user, never granted).
ROLES_SQL = "'citizen', 'operator', 'land_officer', 'security_officer', 'leader', 'admin'"

UPGRADE = r"""
CREATE TABLE users (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Lower case so that sign-in is case-insensitive; no ':' (HTTP Basic separator).
    username            text NOT NULL UNIQUE
                            CHECK (username = lower(username) AND username ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
    full_name           text NOT NULL DEFAULT '',
    password_hash       text NOT NULL CHECK (password_hash ~ '^\$argon2'),
    disabled            boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_roles (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN (@ROLES@)),
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role)
);

-- API keys `gioc_<prefix>_<secret>`: the prefix finds the row, only a SHA-256 of the whole key
-- is stored (the secret is 256 random bits, so a fast hash is enough).
CREATE TABLE api_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL CHECK (name <> ''),
    prefix       text NOT NULL UNIQUE CHECK (prefix ~ '^[0-9a-f]{12}$'),
    key_hash     text NOT NULL CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    roles        text[] NOT NULL DEFAULT '{}'
                     CHECK (roles <@ ARRAY[@ROLES@]::text[] AND array_position(roles, NULL) IS NULL),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL CHECK (expires_at > created_at),
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

-- A key never carries a role its user does not hold when it is created.
CREATE FUNCTION api_keys_check_roles() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE extra text[];
BEGIN
    SELECT array_agg(r ORDER BY r) INTO extra FROM unnest(NEW.roles) AS r
     WHERE NOT EXISTS (SELECT 1 FROM user_roles u WHERE u.user_id = NEW.user_id AND u.role = r);
    IF extra IS NOT NULL THEN
        RAISE check_violation USING
            MESSAGE = format('API key roles %s are not held by its user', extra);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER api_keys_check_roles BEFORE INSERT OR UPDATE OF roles, user_id ON api_keys
    FOR EACH ROW EXECUTE FUNCTION api_keys_check_roles();

-- One row per web sign-in. Refresh tokens rotate (refresh_jti is the only valid one); sign-out,
-- a password change, disabling the user or a reused refresh token set revoked_at, which also
-- ends the session's access tokens (they carry the session id).
CREATE TABLE auth_sessions (
    id           uuid PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_jti  uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    refreshed_at timestamptz,
    expires_at   timestamptz NOT NULL CHECK (expires_at > created_at),
    revoked_at   timestamptz,
    client       text
);
CREATE INDEX auth_sessions_user_idx ON auth_sessions (user_id);
CREATE INDEX auth_sessions_expires_idx ON auth_sessions (expires_at);

CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    username   text,
    roles      text[] NOT NULL DEFAULT '{}',
    -- read, write, sign_in, sign_in_failed, sign_in_locked, sign_out, refresh, key_create, ...
    action     text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_]*$'),
    -- How the caller proved who they are: password, jwt, basic, api_key:<prefix>, cli.
    credential text,
    method     text,
    path       text,
    query      text,
    layer      text,
    target     jsonb,
    status     integer CHECK (status BETWEEN 100 AND 599),
    client     text
);
CREATE INDEX audit_log_at_brin ON audit_log USING brin (at);
CREATE INDEX audit_log_username_idx ON audit_log (username, at);
CREATE INDEX audit_log_layer_idx ON audit_log (layer, at) WHERE layer IS NOT NULL;

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE insufficient_privilege USING
        MESSAGE = format('audit_log is append-only: %s refused', TG_OP);
END $$;
-- Statement level, so even a statement matching no row is refused.
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Privileges of the application role, when the server has it (scripts/setup.sh creates it).
DO $$
DECLARE t regclass;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
        RAISE WARNING 'role geoioc_app does not exist: the application will run as %', current_user;
        RETURN;
    END IF;
    FOR t IN
        SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
           AND c.relname NOT IN ('audit_log', 'alembic_version')
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO geoioc_app', t);
    END LOOP;
    -- The application reads the schema revision (health check) but never changes it.
    -- REVOKE first: default privileges left by an earlier run of this migration in the same
    -- database would otherwise have granted UPDATE/DELETE on these at creation.
    IF to_regclass('public.alembic_version') IS NOT NULL THEN
        REVOKE ALL ON alembic_version FROM geoioc_app;
        GRANT SELECT ON alembic_version TO geoioc_app;
    END IF;
    REVOKE ALL ON audit_log FROM geoioc_app;
    GRANT SELECT, INSERT ON audit_log TO geoioc_app;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO geoioc_app;
    -- Tables and sequences later migrations create (as this role) get the same privileges;
    -- a later append-only table must revoke UPDATE, DELETE itself.
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
        GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO geoioc_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO geoioc_app;
END $$;
""".replace("@ROLES@", ROLES_SQL)

DOWNGRADE = r"""
DO $$
DECLARE t regclass;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
        RETURN;
    END IF;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
        REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM geoioc_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM geoioc_app;
    FOR t IN
        SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM geoioc_app', t);
    END LOOP;
END $$;
DROP TABLE IF EXISTS audit_log, auth_sessions, api_keys, user_roles, users CASCADE;
DROP FUNCTION IF EXISTS audit_log_append_only();
DROP FUNCTION IF EXISTS api_keys_check_roles();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
