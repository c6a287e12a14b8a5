"""Settings from the environment (prefix ``GEOIOC_``), one object per process."""

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

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
    # Province CRS for areas, lengths and cadastral coordinates: VN-2000 / TM-3 105-30 (Bac Ninh).
    province_srid: int = 9209
    # Optional basemap tile URL template; empty keeps the map fully offline.
    basemap_url: str = ""

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
