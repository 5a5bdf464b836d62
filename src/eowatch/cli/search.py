"""``eowatch search``: list acquisitions over an AOI and period, and the pairs
the pairing rules propose. Register with ``cli.add_command(search)``."""

from __future__ import annotations

import json
from typing import Any

import click

from .context import services_of_command
from .exits import EowatchCommand

__all__ = ["search"]


@click.command(cls=EowatchCommand)
@click.option(
    "--aoi", required=True, help="AOI: GeoJSON file/text, WKT, or bbox minlon,minlat,maxlon,maxlat."
)
@click.option("--start", required=True, help="Start of the period (ISO date or datetime, UTC).")
@click.option("--end", required=True, help="End of the period (a bare date includes that day).")
@click.option("--sensor", type=click.Choice(["s1", "s2"]), default="s2", show_default=True)
@click.option("--provider", default=None,
              help="earth-search, planetary-computer, cdse, local, local:FOLDER or a STAC API URL "
                   "(default: the discovery_provider setting).")  # fmt: skip
@click.option(
    "--collection", "collections", multiple=True, help="Collection(s) instead of the provider's default."
)
@click.option("--max-cloud", type=click.FloatRange(0, 100), default=None,
              help="Largest cloud cover over the AOI, percent (Sentinel-2).")  # fmt: skip
@click.option(
    "--polarisation", "polarisations", multiple=True, help="Required polarisation, e.g. VV (repeatable)."
)
@click.option("--orbit", type=int, default=None, help="Sentinel-1 relative orbit.")
@click.option("--pass", "orbit_state", type=click.Choice(["ascending", "descending"]), default=None,
              help="Sentinel-1 pass direction.")  # fmt: skip
@click.option(
    "--limit", type=click.IntRange(1), default=100, show_default=True, help="Most acquisitions listed."
)
@click.option(
    "--scene-cloud", is_flag=True, help="Use the scenes' eo:cloud_cover instead of reading the SCL."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def search(ctx: click.Context, aoi: str, start: str, end: str, sensor: str, provider: str | None,
           collections: tuple[str, ...], max_cloud: float | None, polarisations: tuple[str, ...],
           orbit: int | None, orbit_state: str | None, limit: int, scene_cloud: bool,
           as_json: bool) -> None:  # fmt: skip
    """Find acquisitions over an AOI and period, and propose before/after pairs."""
    from ..aoi import check_aoi, parse_aoi
    from ..catalog import PairingRules, SearchQuery, discover, propose_pairs

    services = services_of_command()
    settings = services.settings
    geom = check_aoi(parse_aoi(aoi), settings.max_aoi_area_km2)
    query = SearchQuery(aoi=geom, start=start, end=end, sensor=sensor, collections=collections,  # type: ignore[arg-type]
                        max_cloud_cover=max_cloud, polarisations=polarisations, relative_orbit=orbit,
                        orbit_state=orbit_state, limit=limit)  # fmt: skip
    chosen = services.provider(provider)
    found = discover(query, chosen, settings, use_scl=not scene_cloud)
    rules = PairingRules.for_sensor(query.sensor, settings, required_polarisations=query.polarisations)
    pairs = propose_pairs(found, rules, geom)
    if as_json:
        click.echo(json.dumps({"provider": chosen.name, "acquisitions": [r.summary() for r in found],
                               "pairs": [p.as_dict() for p in pairs], "skipped": found.skipped,
                               "notes": found.notes}, indent=1, default=str))  # fmt: skip
        return
    _print_table(found, query.sensor, chosen.name)
    click.echo("")
    if not pairs:
        click.echo("no pair proposed (see `--json` for the reasons of each candidate)")
    for p in pairs:
        click.echo(f"pair  {p.before.id}  ->  {p.after.id}\n      {p.reason}")
    for note in found.notes:
        click.echo(f"note: {note}", err=True)


def _print_table(found: Any, sensor: str, provider: str) -> None:
    click.echo(
        f"{len(found)} acquisition(s) from {provider}"
        + (f", {found.skipped} skipped" if found.skipped else "")
    )
    if sensor == "sentinel-1":
        click.echo(f"{'datetime':<21}{'orbit':>6} {'pass':<11}{'pol':<8}{'collection':<24}id")
        for r in found:
            orbit, state = r.relative_orbit or "-", r.orbit_state or "-"
            click.echo(f"{r.datetime:%Y-%m-%d %H:%M:%S}  {orbit:>5} {state:<11}"
                       f"{'+'.join(r.polarisations):<8}{r.collection[:23]:<24}{r.id}")  # fmt: skip
        return
    click.echo(f"{'datetime':<21}{'tile':<7}{'cloud over AOI':<34}{'collection':<24}id")
    for r in found:
        cloud = r.cloud.describe() if r.cloud is not None else "-"
        click.echo(
            f"{r.datetime:%Y-%m-%d %H:%M:%S}  {r.mgrs_tile or '-':<7}{cloud[:33]:<34}"
            f"{r.collection[:23]:<24}{r.id}"
        )
