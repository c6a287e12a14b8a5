"""Settings from the environment (prefix ``GEOIOC_``), one object per process."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GEOIOC_", env_file=".env", extra="ignore")

    database_url: str = "postgresql://geoioc:geoioc@127.0.0.1:5432/geoioc"
    host: str = "127.0.0.1"
    port: int = 8000
    # Public URL prefix of the server, used for absolute links (OGC API needs them).
    public_url: str = ""
    pool_min_size: int = 1
    pool_max_size: int = 10
    # How long a request waits for a pooled connection when all are busy before answering 503
    # (a database found unreachable answers 503 within half a second instead: gis.db).
    pool_timeout_seconds: float = 15.0
    # PostgreSQL streaming replicas of database_url (comma-separated URLs) for read-only traffic:
    # OGC reads and tiles, analytics, dashboards, map data (gis/db.py). A user who just wrote
    # reads from a replica only once it has replayed that write, else from the primary; a
    # replica that stops answering is skipped and probed again every read_replica_retry_seconds.
    # Empty: everything on database_url.
    read_database_urls: Annotated[list[str], NoDecode] = []
    read_replica_retry_seconds: Annotated[float, Field(gt=0)] = 5.0
    # Province CRS for areas, lengths and cadastral coordinates: VN-2000 / TM-3 105-30 (Bac Ninh).
    province_srid: int = 9209
    # Optional basemap tile URL template; empty keeps the map fully offline.
    basemap_url: str = ""

    # --- sign-in and tokens -------------------------------------------------------------
    # HS256 key for JWTs (at least 32 characters). Empty: .geoioc/jwt-secret, generated on first
    # use. Several servers behind one address must share it: set it here for all of them.
    jwt_secret: str = ""
    jwt_issuer: str = "geoioc"
    jwt_audience: str = "geoioc"
    access_token_minutes: int = 15
    # A refresh token keeps a web session alive for one working day, then the user signs in again.
    refresh_token_hours: int = 8
    api_key_default_days: int = 90
    api_key_max_days: int = 365
    password_min_length: int = 10
    # Brute-force protection (shared by the server processes: limits_namespace): failures before
    # a lockout, the first lockout (doubling with each further failure up to the maximum) and
    # how long failures are remembered.
    signin_max_failures_per_user: int = 5
    signin_max_failures_per_ip: int = 20
    signin_lockout_seconds: int = 60
    signin_max_lockout_seconds: int = 900
    signin_failure_window_seconds: int = 900
    # HTTP Basic (QGIS, GDAL): how long a verified username/password skips argon2.
    basic_auth_cache_seconds: int = 300

    # --- citizen reports ------------------------------------------------------------------
    # A citizen may reopen a resolved report within this many days of its resolution.
    report_reopen_days: int = 7
    # Flood limit on report intake (Open311 POST and the report page), per client address:
    # at most this many reports at once, refilled at this many per window (0 = no limit).
    # Every attempt counts, refused ones too: a flood is refused before it is read.
    report_flood_limit: Annotated[int, Field(ge=0)] = 10
    report_flood_window_seconds: Annotated[float, Field(gt=0)] = 600.0
    # Open311 jurisdiction_id of the province (the province's code in admin_units is accepted
    # too); the spec suggests the jurisdiction's web domain.
    open311_jurisdiction_id: str = "bacninh.gov.vn"
    # Open311 discovery: who to contact, when the service list last changed.
    open311_contact: str = "Trung tâm điều hành thông minh tỉnh / Provincial IOC: ioc@bacninh.gov.vn"
    open311_changeset: str = "2026-12-03 00:00"

    # --- HTTP hardening -----------------------------------------------------------------
    # Origins allowed to call the API from other sites' pages (comma-separated or JSON list);
    # empty = same origin only.
    cors_origins: Annotated[list[str], NoDecode] = []
    # Token bucket per client address for requests without credentials.
    rate_limit_anonymous_per_second: float = 20.0
    rate_limit_anonymous_burst: int = 400
    # Requests with credentials: 0 = not limited (bad credentials are refused before any work,
    # password guessing is bounded by the sign-in lockout); otherwise a bucket per credential.
    rate_limit_signed_in_per_second: float = 0.0
    rate_limit_signed_in_burst: int = 2000
    # Rate limits, flood limits and sign-in lockouts count in the database (gis/limits), under
    # this namespace: the same for every process and host of one deployment, so that they hold
    # whichever process answers. `geoioc serve` uses "geoioc" when it is unset; an app built
    # without one (tests) counts under a namespace of its own.
    limits_namespace: str = ""
    # Add `X-GeoIOC-Worker: <pid>` to every response (which server process answered; tests).
    worker_header: bool = False

    # --- background jobs (gis/jobs: procrastinate) ------------------------------------
    # `geoioc serve` runs a queue worker inside the server process, so one command serves and
    # works; false when workers run apart (`geoioc worker`, several of them).
    jobs_in_process: bool = True
    # Jobs one worker runs at once (exports are blocking and run in threads).
    jobs_concurrency: int = 2
    # A worker is told of new jobs at once (LISTEN/NOTIFY); it also polls this often, which is
    # what picks up a retry whose time has come.
    jobs_poll_seconds: float = 1.0
    # A worker writes its heartbeat this often; a job whose worker has not written one for
    # jobs_stalled_seconds is stalled (its process died) and is run again.
    jobs_heartbeat_seconds: float = 10.0
    jobs_stalled_seconds: float = 60.0
    # Webhook deliveries: attempts before a delivery is a dead letter, and the waits between
    # them (doubling from the first up to the longest): 5 s, 10 s, 20 s ... 1 h.
    webhook_max_attempts: int = 12
    webhook_retry_first_seconds: float = 5.0
    webhook_retry_max_seconds: float = 3600.0
    webhook_timeout_seconds: float = 10.0

    # --- sensor streams (gis/sensors: MQTT ingest) ---------------------------------------
    # The MQTT broker: mqtt://[user:password@]host:port (mqtts:// for TLS). When set, `make run`
    # and `make test` install and start no broker.
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    # Prepended to every topic the ingest subscribes to (e.g. "province-bn/"): several
    # deployments, or test runs, on one broker. Empty: the SensorThings topics as they are.
    mqtt_topic_prefix: str = ""
    # `geoioc serve` runs an ingest worker in the server process; false when workers run apart
    # (`geoioc ingest`, as many as needed: they share the load).
    ingest_in_process: bool = True
    # The shared subscription's group: the workers of one group share the messages.
    ingest_share_group: str = "geoioc-ingest"
    # The worker's MQTT client id (its session with the broker); empty: geoioc-ingest-<host>-<slot>.
    ingest_client_id: str = ""
    # How long the broker keeps a worker's session (and the messages meant for it) while it is
    # away. Long enough for a restart or an upgrade; a worker removed for good leaves its
    # session for this long.
    ingest_session_expiry_seconds: int = 86400
    # Messages the broker may have sent a worker before it acknowledges them (MQTT v5 Receive
    # Maximum): a batch is acknowledged after its commit, so this bounds a batch's messages.
    ingest_receive_maximum: Annotated[int, Field(ge=1, le=65535)] = 20000
    # A batch: at most this many observations, or what came within the linger time.
    ingest_batch_max: Annotated[int, Field(ge=1)] = 5000
    ingest_batch_linger_seconds: Annotated[float, Field(ge=0)] = 0.05
    # Phenomenon times accepted: this far back (older is refused, time_out_of_range) ...
    ingest_max_age_days: Annotated[int, Field(ge=1)] = 3660
    # ... and this far ahead (forecasts may be ahead; a clock set wrong should not).
    ingest_max_future_seconds: Annotated[int, Field(ge=0)] = 2 * 86400
    # Monthly partitions of observations (and of incidents, migration 0038) kept created ahead
    # of the current month by the hourly job (gis/sensors/partitions.py).
    observation_partitions_ahead: Annotated[int, Field(ge=1, le=24)] = 3

    # --- cameras (gis/sensors/cameras.py: heartbeats, snapshots, detections) -------------
    # A camera heard from within this many seconds is online (or degraded when its heartbeat
    # reports a low frame rate or poor quality); later than that it is degraded (late), and
    # offline once silent for longer than camera_offline_seconds.
    camera_online_seconds: Annotated[int, Field(ge=5, le=86400)] = 90
    camera_offline_seconds: Annotated[int, Field(ge=10, le=7 * 86400)] = 300
    # What a heartbeat must report not to be degraded (when it reports them at all).
    camera_min_fps: Annotated[float, Field(ge=0, le=240)] = 10.0
    camera_min_quality: Annotated[float, Field(ge=0, le=1)] = 0.5
    # A detection at or above this confidence becomes an incident at once; below, it waits for
    # an operator to confirm or dismiss it.
    detection_confidence_threshold: Annotated[float, Field(ge=0, le=1)] = 0.8

    # --- distributed analytics (gis/analysis/distributed.py) ---------------------------
    # A Dask scheduler (tcp://host:8786): the heavy incident analytics (KDE, grid counts, Gi*
    # and emerging hot spots) read and bin their points on its workers, which connect to
    # database_url themselves (they need the geoioc package and must reach the database).
    # Empty: everything is counted in the database.
    dask_scheduler: str = ""

    # --- SensorThings API (/sta/v1.1, gis/sta) -------------------------------------------
    # A read that runs longer is stopped (503 with Retry-After): a deep $expand or a filter no
    # index serves over a large Observations table must not hold the database.
    sta_statement_timeout_ms: Annotated[int, Field(ge=100, le=600_000)] = 10_000

    @field_validator("mqtt_topic_prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if any(c in value for c in "+#$\0") or (value and not value.endswith("/")):
            raise ValueError("the topic prefix has no wildcards and ends with '/' (e.g. 'bn/')")
        return value

    @field_validator("read_database_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip().rstrip("/") for part in text.split(",") if part.strip()]
        return value

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
