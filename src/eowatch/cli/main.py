"""``eowatch`` command line: each command parses arguments and calls the library."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import EowatchError, InputError
from ..services import Services
from .ard import ard
from .catalog import catalog as catalog_group
from .checks import writable_file, writable_folder
from .context import load_settings
from .exits import DEBUG_KEY, EowatchGroup
from .feedback import feedback
from .s1_options import CALIBRATION_OPTION, DEM_OPTION
from .search import search
from .serve import admin, serve
from .task import scheduler, task, worker
from .train import train

__all__ = ["cli"]


def _parse_param_values(values: tuple[str, ...]) -> dict[str, Any]:
    """``k=v`` pairs; values are read as JSON when they parse (numbers, booleans), else as text."""
    params: dict[str, Any] = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(
                f"{item!r} is not name=value (e.g. --param alpha=0.01)", param_hint="--param"
            )
        key, raw = item.split("=", 1)
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


class _Progress:
    """Stage-by-stage progress on stderr, with the time each stage took."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.last: tuple[str, float] | None = None

    def __call__(self, stage: str) -> None:
        self.close()
        self.last = (stage, time.perf_counter())
        if not self.quiet:
            click.echo(f"  {stage:<10}", nl=False, err=True)

    def close(self, failed: bool = False) -> None:
        if self.last and not self.quiet:
            click.echo("failed" if failed else f"{time.perf_counter() - self.last[1]:6.2f} s", err=True)
        self.last = None

    def run(self, fn: Any, *args: Any) -> Any:
        """Call ``fn(*args, progress=self)`` and close the display, marking a failure."""
        try:
            result = fn(*args, progress=self)
        except BaseException:
            self.close(failed=True)
            raise
        self.close()
        return result


def _check_collection(services: Services, collection: str) -> None:
    """Before any work: ``collection`` is a valid id and the results catalogue opens and
    holds it (it is created when missing)."""
    try:
        services.results.ensure_collection(collection)
    except (EowatchError, OSError) as exc:
        if isinstance(exc, InputError):
            raise InputError(f"--collection {collection}: {exc}") from exc
        raise InputError(
            f"--collection {collection}: cannot use the results catalogue "
            f"{services.settings.results_database_url()} ({exc}); set EOWATCH_DATABASE_URL to a writable one"
        ) from exc


@click.group(cls=EowatchGroup)
@click.version_option(package_name="eowatch")
@click.option("--debug", is_flag=True, help="Show the Python traceback of an unexpected error.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Watch areas of interest from space: Sentinel-1/2 change detection.

    Exit status: 0 done, 2 usage or bad input (the error line says what to change),
    1 failure."""
    ctx.meta[DEBUG_KEY] = debug
    ctx.obj = Services(load_settings())


@cli.command()
@click.option(
    "--before", default=None, help="Earlier date: band folder, raster file or STAC Item (path/URL)."
)
@click.option("--after", default=None, help="Later date, same forms as --before.")
@click.option(
    "--start", default=None, help="With --aoi and --sensor instead of files: discover from this date."
)
@click.option(
    "--end", default=None, help="... to this date (the newest eligible pair in the period is used)."
)
@click.option("--provider", default=None, help="Discovery provider (default: settings.discovery_provider).")
@click.option(
    "--preset", default=None, help="Preset name (see `eowatch presets`); default depends on the sensor."
)
@click.option(
    "--sensor", type=click.Choice(["s1", "s2"]), default=None, help="Only check the preset's sensor."
)
@click.option("--aoi", default=None, help="AOI: GeoJSON file/text, WKT, or bbox minlon,minlat,maxlon,maxlat.")
@click.option("--crs", default=None, help="Target CRS (e.g. EPSG:32631); default: the before image's.")
@click.option("--resolution", type=float, default=None, help="Target pixel size in CRS units (e.g. 10).")
@click.option("--param", "params", multiple=True, help="Preset parameter name=value (repeatable).")
@DEM_OPTION
@CALIBRATION_OPTION
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None, help="Output folder.")
@click.option(
    "--collection", default=None, help="Also register the run in this collection of the results catalogue."
)
@click.option("--stac-catalog", is_flag=True, help="Also link the product from a STAC catalog.json in --out.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.pass_obj
def detect(
    services: Services,
    before: str | None,
    after: str | None,
    start: str | None,
    end: str | None,
    provider: str | None,
    preset: str | None,
    sensor: str | None,
    aoi: str | None,
    crs: str | None,
    resolution: float | None,
    params: tuple[str, ...],
    dem: str | None,
    calibration: str | None,
    out_dir: Path | None,
    collection: str | None,
    stac_catalog: bool,
    quiet: bool,
) -> None:
    """Detect changes between two acquisitions and write a product folder."""
    from ..detect import get_preset

    settings = services.settings
    from ..pipeline import DetectRequest, detect_pair

    if preset and sensor and get_preset(preset).sensor != {"s1": "sentinel-1", "s2": "sentinel-2"}[sensor]:
        raise click.BadParameter(f"preset {preset!r} is not a {sensor} preset", param_hint="--preset")
    writable_folder(out_dir or settings.output_dir, "--out")
    if collection:
        _check_collection(services, collection)
    inputs: tuple[Any, Any] = (before, after)
    provenance: dict[str, Any] = {}
    if before is None or after is None:
        if not (aoi and start and end and sensor):
            raise click.UsageError("give --before and --after, or --aoi with --start, --end and --sensor")
        from ..catalog import discover_pair

        pair = discover_pair(aoi, start, end, sensor, None, settings, provider=services.provider(provider))
        click.echo(f"pair {pair.before.id} -> {pair.after.id}: {pair.reason}", err=True)
        inputs = (pair.before.acquisition, pair.after.acquisition)
        provenance = {"eowatch:pairing": pair.as_dict()}
    request = DetectRequest(
        *inputs, preset, _parse_param_values(params), aoi, crs, resolution, provenance, dem, calibration
    )
    output = _Progress(quiet).run(detect_pair, request, settings, out_dir)
    if collection:
        services.results.ingest_folder(output.folder, collection)
        click.echo(f"registered {output.item.id} in collection {collection!r}", err=True)
    if stac_catalog:
        from ..io.stac_catalog import write_output_catalog

        write_output_catalog(output.folder.parent, [output.folder])
    _print_summary(output)


def _print_summary(output: Any) -> None:
    props = output.item.properties
    for warning in props.get("eowatch:warnings", []):
        click.echo(f"warning: {warning}", err=True)
    if props["eowatch:status"] == "insufficient-valid-data":
        click.echo(
            f"warning: only {props['eowatch:valid_fraction_aoi']:.0%} of the AOI is observed clear on both "
            "dates: no change found there does not mean no change happened",
            err=True,
        )
    click.echo(
        json.dumps(
            {
                "folder": str(output.folder),
                "status": props["eowatch:status"],
                "preset": props["eowatch:preset"],
                "changed_area_m2": props["eowatch:changed_area_m2"],
                "polygons": props["eowatch:polygon_count"],
                "valid_fraction": props["eowatch:valid_fraction"],
                "valid_fraction_aoi": props["eowatch:valid_fraction_aoi"],
            },
            indent=1,
        )
    )


@cli.command("detect-series")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--preset", default="s1-omnibus", show_default=True, help="A preset that accepts time series.")
@click.option("--aoi", default=None, help="AOI: GeoJSON file/text, WKT, or bbox minlon,minlat,maxlon,maxlat.")
@click.option("--param", "params", multiple=True, help="Preset parameter name=value (repeatable).")
@DEM_OPTION
@CALIBRATION_OPTION
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None, help="Output folder.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.pass_obj
def detect_series_cmd(
    services: Services,
    inputs: tuple[str, ...],
    preset: str,
    aoi: str | None,
    params: tuple[str, ...],
    dem: str | None,
    calibration: str | None,
    out_dir: Path | None,
    quiet: bool,
) -> None:
    """Detect changes across a time series of acquisitions (omnibus test)."""
    from ..pipeline import SeriesRequest, detect_series

    writable_folder(out_dir or services.settings.output_dir, "--out")
    request = SeriesRequest(list(inputs), preset, _parse_param_values(params), aoi, dem, calibration)
    _print_summary(_Progress(quiet).run(detect_series, request, services.settings, out_dir))


@cli.command("demo-s1")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("out/s1-demo-input"),
    show_default=True,
    help="Where to write the demo pair.",
)
def demo_s1(out_dir: Path) -> None:
    """Build the Sentinel-1 demo pair: a real Sen1Floods11 scene and an after date
    with documented injected changes and fresh speckle."""
    from ..demo_s1 import build_s1_demo

    demo = build_s1_demo(writable_folder(out_dir, "--out"))
    click.echo(
        json.dumps({"before": str(demo.before), "after": str(demo.after), "changes": str(demo.changes)})
    )


@cli.command("stac-wrap")
@click.argument("source")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Catalogue folder.")
@click.option("--id", "item_id", default=None, help="Item id (default: derived from SOURCE).")
@click.option("--sensor", type=click.Choice(["s1", "s2"]), default=None, help="When the files are ambiguous.")
def stac_wrap(source: str, out_dir: Path, item_id: str | None, sensor: str | None) -> None:
    """Wrap a band folder or multi-band raster as a STAC catalogue (catalog.json, one Item,
    the band files beside it): the input form of the CWL application packages."""
    from ..io.stac_catalog import wrap_input

    names = {"s1": "sentinel-1", "s2": "sentinel-2"}
    writable_folder(out_dir, "--out")
    click.echo(str(wrap_input(source, out_dir, item_id, names.get(sensor or ""))))


@cli.command()
@click.option("--sensor", type=click.Choice(["s1", "s2"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def presets(sensor: str | None, as_json: bool) -> None:
    """List the detection presets with their parameters and defaults."""
    from ..detect import list_presets

    names = {"s1": "sentinel-1", "s2": "sentinel-2"}
    described = [p.describe() for p in list_presets(names.get(sensor or ""))]
    if as_json:
        click.echo(json.dumps(described, indent=1, default=str))
        return
    for d in described:
        click.echo(f"{d['name']}  ({d['sensor']})\n    {d['summary']}")
        for name, f in d["parameters"].items():
            click.echo(f"    --param {name}={f['default']!s:<10} {f['description']}")
        click.echo("")
    if any(d["sensor"] == "sentinel-2" for d in described):
        _print_s2_classes()


def _print_s2_classes() -> None:
    """The spectral rules behind the Sentinel-2 change classes (``eowatch.kernels.classify``)."""
    from ..kernels import classify

    click.echo(
        "Sentinel-2 change classes (reflectance of both dates; rules tried in this order, first match "
        "wins;\na change region keeps the class most of its pixels have only when its mean index values "
        "satisfy that rule, else it is 'other change'):"
    )
    order = {code: i for i, code in enumerate(classify.RULE_ORDER)}
    rules = sorted(classify.SPECTRAL_CHANGE_CLASSES, key=lambda c: order.get(c.value, len(order)))
    for c in rules:
        click.echo(f"    {c.value}  {c.name:<24} {c.description}")


@cli.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--dataset",
    type=click.Choice(["oscd", "ombria", "s1-dry"]),
    default="oscd",
    help="Layout of ROOT: OSCD (Sentinel-2 cities), OMBRIA (Sentinel-1 flood PNG pairs) or s1-dry "
    "(ROOT = the shared data folder: flagged share of a flood preset on pairs without flood, and its "
    "pooled scores on ROOT/s1_pairs/ombria_s1_trainsubset).",
)
@click.option("--preset", default=None, help="Preset to score (default: the sensor's default preset).")
@click.option("--param", "params", multiple=True, help="Preset parameter name=value (repeatable).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="Write scores here.")
@click.option(
    "--cv",
    type=click.Choice(["leave-one-city-out"]),
    default=None,
    help="Cross-validate s2-learned on OSCD: each city scored by a model trained on the others.",
)
@click.pass_obj
def evaluate(
    services: Services,
    root: Path,
    dataset: str,
    preset: str | None,
    params: tuple[str, ...],
    json_path: Path | None,
    cv: str | None,
) -> None:
    """Score a preset on labelled pairs (precision, recall, F1, kappa, ROC-AUC); progress on stderr."""
    from ..evaluation import evaluate_oscd
    from ..evaluation.dry import evaluate_dry
    from ..evaluation.ombria import evaluate_ombria

    settings = services.settings
    if json_path:
        writable_file(json_path, "--json")
    evaluator, name = {
        "oscd": (evaluate_oscd, preset or settings.default_s2_preset),
        "ombria": (evaluate_ombria, preset or "s1-flood"),
        "s1-dry": (evaluate_dry, preset or "s1-flood"),
    }[dataset]
    progress = _progress_printer(dataset)
    values = _parse_param_values(params)
    if cv:
        from ..evaluation.cv import cross_validate_oscd

        report = cross_validate_oscd(root, dataset, preset, values, settings, progress)
    elif dataset == "s1-dry":
        dry_cases = evaluate_dry(root, name, values, settings, progress=progress)
        report = evaluate_ombria(
            root / "s1_pairs/ombria_s1_trainsubset", name, values, settings, _progress_printer("ombria")
        )
        report["dry"] = dry_cases
    else:
        report = evaluator(root, name, values, settings, progress=progress)
    header = f"{'pair':<14}{'precision':>10}{'recall':>8}{'F1':>8}{'kappa':>8}{'IoU':>8}{'ROC-AUC':>9}"
    click.echo(f"{report['dataset']} / {report['preset']}\n{header}")
    for r in report["pairs"]:
        auc = f"{r['roc_auc']:.3f}" if r["roc_auc"] is not None else "-"
        click.echo(
            f"{r['name']:<14}{r['precision']:>10.3f}{r['recall']:>8.3f}{r['f1']:>8.3f}"
            f"{r['kappa']:>8.3f}{r['iou']:>8.3f}{auc:>9}"
        )
    for label, m in (("mean", report["mean"]), ("pooled", report.get("pooled"))):
        if m:
            click.echo(
                f"{label:<14}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}"
                f"{m['kappa']:>8.3f}{m['iou']:>8.3f}{m['roc_auc'] or 0:>9.3f}"
            )
    if valid := report.get("valid_only"):
        click.echo(f"\nover pixels observed clear on both dates\n{'pair':<14}{'F1':>8}{'masked before':>15}"
                   f"{'masked after':>14}")  # fmt: skip
        for r, m in zip(valid["pairs"], report["masking"], strict=True):
            click.echo(f"{r['name']:<14}{r['f1']:>8.3f}{m['before']['masked_fraction']:>15.2%}"
                       f"{m['after']['masked_fraction']:>14.2%}")  # fmt: skip
        click.echo(f"{'mean':<14}{valid['mean']['f1']:>8.3f}")
    if overlap := report.get("training_overlap"):
        click.echo(
            f"warning: the model was trained on {len(overlap)} of these pairs ({', '.join(overlap)}): "
            "these are training-set scores; use --cv leave-one-city-out",
            err=True,
        )
    if calibration := report.get("reliability"):
        _print_reliability(calibration)
    if "decrease_thresholds_at_or_above_0db" in report:
        click.echo(f"decrease thresholds at or above 0 dB: {report['decrease_thresholds_at_or_above_0db']}")
    if dry_groups := report.get("dry"):
        _print_dry(dry_groups)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=1))
        click.echo(f"scores written to {json_path}", err=True)


def _progress_printer(dataset: str, every: int = 10) -> Callable[[str], None]:
    """One stderr line per ``every`` pairs (and the first): evaluations take minutes."""
    count = 0

    def show(what: str) -> None:
        nonlocal count
        count += 1
        if count == 1 or count % every == 0:
            click.echo(f"{dataset}: pair {count}: {what}", err=True)

    return show


def _print_reliability(table: dict[str, Any]) -> None:
    click.echo(
        f"\nreliability of the flagged pixels' confidence\n{'confidence':<14}{'precision':>10}{'count':>10}"
    )
    for b in table["bins"]:
        if b["count"]:
            click.echo(f"{b['low']:.1f}-{b['high']:.1f}{'':<7}{b['precision']:>10.3f}{b['count']:>10}")
    ece = table.get("ece")
    click.echo(
        f"expected calibration error: {ece:.3f}" if ece is not None else "expected calibration error: -"
    )


def _print_dry(dry: dict[str, Any]) -> None:
    click.echo(
        f"\nflagged share on pairs without flood\n{'group':<24}{'pairs':>6}{'median':>9}{'p90':>9}{'max':>9}"
    )
    for group, g in dry["groups"].items():
        click.echo(f"{group:<24}{g['count']:>6}{g['median']:>9.2%}{g['p90']:>9.2%}{g['max']:>9.2%}")


cli.add_command(search)
cli.add_command(catalog_group)
cli.add_command(feedback)
cli.add_command(train)
cli.add_command(ard)
for _command in (serve, admin, task, scheduler, worker):
    cli.add_command(_command)
