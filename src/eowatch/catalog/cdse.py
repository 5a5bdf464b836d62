"""Copernicus Data Space Ecosystem STAC (v1).

Search needs no account. Its assets are ``s3://eodata/...`` objects (read as
``/vsis3/`` with CDSE S3 credentials in ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
and ``AWS_S3_ENDPOINT=eodata.dataspace.copernicus.eu``), so reading the pixels
needs those credentials set in the environment GDAL sees.
"""

from __future__ import annotations

from ..settings import Settings
from .providers import register_provider
from .stac_api import StacApiProvider

__all__ = ["CDSE_STAC_URL", "CDSE_COLLECTIONS", "cdse"]

CDSE_STAC_URL = "https://stac.dataspace.copernicus.eu/v1"
CDSE_COLLECTIONS = {"sentinel-2": ("sentinel-2-l2a",), "sentinel-1": ("sentinel-1-grd",)}


def cdse(settings: Settings) -> StacApiProvider:
    """CDSE STAC, at ``settings.cdse_stac_url`` when set."""
    url = settings.cdse_stac_url or CDSE_STAC_URL
    return StacApiProvider.from_settings("cdse", url, settings, CDSE_COLLECTIONS)


register_provider("cdse", cdse)
