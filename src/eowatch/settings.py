"""One settings object, read from the environment (prefix ``EOWATCH_``) or
passed in explicitly. Nothing reads it at import time: functions that need a
setting take a ``Settings`` argument (pystac's ``StacIO.set_default`` lesson).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default"]


class Settings(BaseSettings):
    """Runtime configuration of eowatch."""

    model_config = SettingsConfigDict(env_prefix="EOWATCH_", extra="forbid")

    output_dir: Path = Field(Path("out"), description="Folder where product folders are written.")
    max_aoi_area_km2: float = Field(
        20_000.0, gt=0, description="AOIs larger than this are refused (a Sentinel-2 tile is ~12,000 km²)."
    )
    default_s2_preset: str = Field(
        "s2-learned",
        description="Preset used when none is named for Sentinel-2 (s2-learned: leave-one-city-out "
        "F1 0.422 on OSCD against s2-imad's 0.362).",
    )
    default_s1_preset: str = Field(
        "s1-logratio", description="Preset used when none is named for Sentinel-1."
    )
    mask_snow: bool = Field(True, description="Treat snow/ice (SCL 11) as no valid data.")
    min_valid_fraction: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Share of the AOI that must be observed clear on both dates; below it a run's status "
        "is 'insufficient-valid-data' (never 'no change').",
    )
    http_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Longest one HTTP request may take or stay silent (remote rasters, STAC documents, "
        "discovery); it is then retried (http_retries) and fails.",
    )
    http_connect_timeout_s: float = Field(10.0, gt=0, description="Longest wait for an HTTP connection.")
    quicklook_max_size: int = Field(
        768, ge=64, description="Largest side of each quicklook panel, in pixels."
    )
    statistic_compression: Literal["ZSTD", "DEFLATE"] = Field(
        "ZSTD",
        description="Codec of the float statistic COG: ZSTD level 1 writes a full tile in half the CPU "
        "of DEFLATE (any GDAL >= 2.3); DEFLATE for readers without zstd.",
    )

    # Discovery (eowatch.catalog)
    discovery_provider: str = Field(
        "earth-search", description="earth-search, planetary-computer, cdse, local, or a STAC API URL."
    )
    stac_api_url: str | None = Field(None, description="URL of the generic 'stac-api' provider.")
    stac_api_s2_collections: tuple[str, ...] = Field(
        ("sentinel-2-l2a",), description="Sentinel-2 collections searched on a generic STAC API (JSON list)."
    )
    stac_api_s1_collections: tuple[str, ...] = Field(
        ("sentinel-1-grd",), description="Sentinel-1 collections searched on a generic STAC API (JSON list)."
    )
    earth_search_url: str | None = Field(None, description="Override of the Earth Search v1 URL.")
    pc_stac_url: str | None = Field(None, description="Override of the Planetary Computer STAC URL.")
    pc_token_url: str | None = Field(
        None, description="Override of the Planetary Computer SAS token endpoint."
    )
    pc_subscription_key: str | None = Field(None, description="Planetary Computer subscription key, if any.")
    cdse_stac_url: str | None = Field(None, description="Override of the Copernicus Data Space STAC URL.")
    local_catalog_path: Path | None = Field(None, description="Folder indexed by the 'local' provider.")
    local_catalog_db: Path | None = Field(None, description="SQLite index of the local catalogue.")
    http_retries: int = Field(
        3, ge=0, le=10, description="Retries of transient HTTP failures (timeouts, 429, 5xx)."
    )
    http_backoff_s: float = Field(0.5, ge=0, description="First back-off delay; doubles at each retry.")
    stac_page_size: int = Field(100, ge=1, le=1000, description="Items per STAC API page.")
    stac_max_pages: int = Field(50, ge=1, description="Most pages read per search.")
    aoi_cloud_from_scl: bool = Field(
        True, description="Estimate cloud cover over the AOI from the SCL asset."
    )
    aoi_cloud_resolution_m: float = Field(160.0, gt=0, description="Resolution of that SCL read, in metres.")
    pair_max_gap_days: float | None = Field(
        None, gt=0, description="Largest gap of a pair (S1 36, S2 60 days)."
    )
    pair_min_valid_fraction: float | None = Field(
        None, ge=0, le=1, description="Least clear fraction of the AOI on both dates (S2; default 0.5)."
    )

    # Results catalogue and API (eowatch.results, eowatch.api)
    database_url: str | None = Field(
        None,
        description="Results catalogue database (sqlite:///... or postgresql+psycopg://...); "
        "default sqlite:///<output_dir>/eowatch.db",
    )
    api_base_url: str | None = Field(
        None, description="Public base URL of the API when behind a proxy; default: the request's URL."
    )

    # Monitoring (eowatch.monitor)
    monitor_database_url: str | None = Field(None, description="Job/task database (default: results DB).")
    monitor_output_dir: Path | None = Field(None, description="Job products (default: output_dir/tasks).")
    monitor_search_limit: int = Field(1000, ge=1, description="Most acquisitions read per task poll.")
    job_lease_s: float = Field(300.0, gt=0, description="Lease of a claimed job (renewed while it runs).")
    job_max_attempts: int = Field(5, ge=1, description="Attempts before a job is failed.")
    job_timeout_s: float = Field(
        3600.0, gt=0, description="Wall-clock limit of one job: it is then stopped and failed (not retried)."
    )
    job_backoff_s: float = Field(30.0, ge=0, description="First retry delay of a transient failure; doubles.")
    executor: str | None = Field(None, description="inline, local (worker processes) or dask.")
    dask_scheduler_address: str | None = Field(None, description="Dask scheduler address (tcp://host:8786).")
    worker_processes: int | None = Field(None, ge=1, description="Worker processes of the local executor.")
    scene_executor: Literal["threads", "dask"] = Field(
        "threads", description="Where a scene's windows run: a local thread pool or the Dask scheduler."
    )
    scene_workers: int = Field(2, ge=1, description="Threads of the local window pool.")
    scene_window_px: int = Field(1024, ge=16, description="Side of a processing window in pixels.")
    max_grid_pixels: int = Field(
        1_000_000_000,
        ge=1,
        description="Largest grid of a run, in pixels (its classes and statistic alone take 5 bytes a "
        "pixel in memory; a Sentinel-2 tile at 10 m is 120.6 M): larger grids are refused before any read.",
    )
    scene_sample_px: int = Field(
        2_000_000, ge=10_000, description="Pixels read to fit global statistics (whole scene when smaller)."
    )
    scene_gdal_cache_mb: int = Field(256, ge=16, description="GDAL block cache while reading windows (MB).")

    # Sentinel-1 GRD inputs (eowatch.io.s1_ard)
    s1_dem: str | None = Field(
        None,
        description="DEM for terrain-correcting GRD inputs (a raster file or URL GDAL opens, heights above "
        "the EGM96/EGM2008 geoid or the ellipsoid); none: geocoding on the geolocation grid's heights.",
    )
    s1_calibration: Literal["auto", "sigma0", "beta0", "gamma0", "gamma0-rtc"] = Field(
        "auto",
        description="Backscatter GRD inputs are calibrated to (gamma0-rtc: terrain flattened, needs the DEM; "
        "auto: gamma0-rtc with a DEM, sigma0 without).",
    )
    ard_dir: Path | None = Field(
        None, description="Where geocoded GRD backscatter is kept for reuse (default: output_dir/ard)."
    )
    worker_poll_s: float = Field(2.0, gt=0, description="Idle worker poll interval.")
    scheduler_poll_s: float = Field(10.0, gt=0, description="Scheduler loop interval.")
    serve_scheduler: bool = Field(False, description="Run the scheduler inside `eowatch serve`.")
    serve_worker: bool = Field(False, description="Run a worker inside `eowatch serve`.")
    alert_max_attempts: int = Field(5, ge=1, description="Delivery attempts of one alert.")
    alert_backoff_s: float = Field(5.0, ge=0, description="First alert retry delay; doubles.")
    smtp_host: str | None = Field(None, description="SMTP server for e-mail alerts.")
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_from: str | None = None
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False

    # Service access control and processes (eowatch.api)
    auth_required: bool = Field(True, description="Require an API key or OIDC token on the API.")
    oidc_jwks_url: str | None = Field(None, description="JWKS URL (or file) of the identity provider.")
    oidc_audience: str | None = None
    oidc_issuer: str | None = None
    oidc_role_claim: str = "eowatch_role"
    oidc_org_claim: str = "organisation"
    process_input_roots: list[Path] = Field(
        default_factory=list, description="Local folders process inputs may come from."
    )
    process_workers: int = Field(
        2,
        ge=0,
        description="OGC API process jobs the service runs at once (each on the executor); 0: the "
        "service runs none itself, `eowatch worker` processes do.",
    )
    process_collection: str = Field("processes", description="Collection receiving process results.")
    max_request_bytes: int = Field(1_048_576, ge=1024, description="Largest accepted request body.")
    outbound_allow: tuple[str, ...] = Field(
        (),
        description="Hosts and networks (CIDR) that user-given URLs (process inputs, a task's STAC API or "
        "webhooks) may reach although they are private, loopback or link-local (JSON list).",
    )
    web_basemap_url: str | None = Field(
        None, description="XYZ template of the web map's online base map; default: offline country outlines."
    )
    web_basemap_attribution: str = Field("", description="Attribution shown with that base map.")
    login_max_failures: int = Field(
        20,
        ge=1,
        description="Failed authentications one client address may make per login_failure_window_s; "
        "its later requests with credentials get 429 (credentials not checked) until the window ends.",
    )
    login_failure_window_s: float = Field(
        300.0,
        gt=0,
        description="Window of login_max_failures, in seconds; repeated failures of one credential from "
        "one address in a window are also one audit row with a count.",
    )
    tile_signing_key: SecretStr | None = Field(
        None,
        description="Secret of the signed tile URLs (TileJSON): any long random text, the same on every "
        "API process; unset, each process draws its own (URLs signed by one are refused by another and "
        "by the next start).",
    )
    tile_url_ttl_s: int = Field(
        900,
        ge=30,
        le=86_400,
        description="Lifetime of a signed tile URL (seconds): how long QGIS, Leaflet or GDAL may use it.",
    )
    tile_cache_s: int = Field(
        60,
        ge=0,
        le=3600,
        description="Cache-Control max-age of tiles (seconds, never beyond the signature's life): how long "
        "a client may still show a tile after the grant behind it was revoked.",
    )

    def ard_folder(self) -> Path:
        return Path(self.ard_dir) if self.ard_dir else Path(self.output_dir) / "ard"

    def results_database_url(self) -> str:
        """``database_url``, else a SQLite file ``eowatch.db`` in the output folder."""
        return self.database_url or f"sqlite:///{(Path(self.output_dir) / 'eowatch.db').resolve()}"


def default(name: str) -> Any:
    """The default of setting ``name`` (for keyword defaults of classes that ``Settings`` configures)."""
    return Settings.model_fields[name].default
