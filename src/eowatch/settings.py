"""One settings object, read from the environment (prefix ``EOWATCH_``) or
passed in explicitly. Nothing reads it at import time: functions that need a
setting take a ``Settings`` argument (pystac's ``StacIO.set_default`` lesson).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Runtime configuration of eowatch."""

    model_config = SettingsConfigDict(env_prefix="EOWATCH_", extra="forbid")

    output_dir: Path = Field(Path("out"), description="Folder where product folders are written.")
    max_aoi_area_km2: float = Field(
        20_000.0, gt=0, description="AOIs larger than this are refused (a Sentinel-2 tile is ~12,000 km²)."
    )
    default_s2_preset: str = Field("s2-imad", description="Preset used when none is named for Sentinel-2.")
    default_s1_preset: str = Field(
        "s1-logratio", description="Preset used when none is named for Sentinel-1."
    )
    mask_snow: bool = Field(True, description="Treat snow/ice (SCL 11) as no valid data.")
    http_timeout_s: float = Field(30.0, gt=0, description="Timeout of one HTTP read of a remote raster.")
    quicklook_max_size: int = Field(
        768, ge=64, description="Largest side of each quicklook panel, in pixels."
    )
