"""``eowatch train``: fit the learned change model (``s2-learned``) from labelled pairs
and write it as a new versioned artifact (model file and model card); a few lines over
``eowatch.learn`` and ``eowatch.evaluation.cv``."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import click

from ..errors import InputError
from ..learn.artifact import save_model
from ..learn.pairs import LabelledPair, oscd_pairs
from ..learn.train import TrainConfig, fit_model, samples_of, training_card
from ..services import Services

__all__ = ["train"]


@click.command()
@click.option(
    "--oscd",
    "oscd_roots",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="An OSCD-layout folder (<city>/imgs_1, imgs_2, cm/<city>-cm.tif); repeatable.",
)
@click.option(
    "--pair",
    "pair_args",
    multiple=True,
    nargs=3,
    type=click.Path(exists=True, path_type=Path),
    help="BEFORE AFTER LABEL: a pair and its label raster on the before date's grid (1/2 or 0/1); "
    "repeatable.",
)
@click.option(
    "--feedback",
    "feedback_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Analysts' verdicts (`eowatch feedback export` GeoJSON): confirmed/wrong-class polygons as "
    "change, false alarms as no change, on the pairs their Items name; repeatable.",
)
@click.option("--label-nodata", type=float, default=None, help="Nodata value of the --pair label rasters.")
@click.option("--licence", default="unknown", help="Licence of the --pair labels (recorded in the card).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Model folder.")
@click.option("--name", default="change-model", show_default=True, help="Model name (files NAME-vN.*).")
@click.option("--cv/--no-cv", default=True, show_default=True, help="Leave-one-pair-out scores in the card.")
@click.option("--trees", type=click.IntRange(1, 2000), default=TrainConfig.trees, show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=TrainConfig.threads, show_default=True)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=TrainConfig.decision_threshold,
    show_default=True,
    help="Decision threshold on the change probability.",
)
@click.option(
    "--regions/--no-regions",
    default=False,
    show_default=True,
    help="Also fit the region stage (regions rated as a whole, on out-of-fold pixel probabilities; "
    "it did not beat the pixel route on OSCD).",
)
@click.pass_obj
def train(
    services: Services,
    oscd_roots: tuple[Path, ...],
    pair_args: tuple[tuple[Path, Path, Path], ...],
    feedback_files: tuple[Path, ...],
    label_nodata: float | None,
    licence: str,
    out: Path,
    name: str,
    cv: bool,
    trees: int,
    threads: int,
    threshold: float,
    regions: bool,
) -> None:
    """Train a change model for the s2-learned preset from labelled pairs; progress on stderr.
    Writes NAME-vN.model.txt, .card.json and .card.md (a new version, never overwriting)."""
    pairs: list[LabelledPair] = [p for root in oscd_roots for p in oscd_pairs(root)]
    pairs += [
        LabelledPair(f"{label.stem}", before, after, label, label_nodata, licence, str(label))
        for before, after, label in pair_args
    ]
    settings = services.settings
    if feedback_files:
        from ..learn.feedback import feedback_pairs

        scratch = Path(tempfile.mkdtemp(prefix="eowatch-feedback-"))
        click.get_current_context().call_on_close(lambda: shutil.rmtree(scratch, ignore_errors=True))
        for i, path in enumerate(feedback_files):
            pairs += feedback_pairs(path, settings, scratch / str(i))
    if not pairs:
        raise InputError("no training pairs: give --oscd ROOT, --pair BEFORE AFTER LABEL or --feedback FILE")
    names = [p.name for p in pairs]
    if len(set(names)) != len(names):
        raise InputError(f"two training pairs share a name ({sorted(names)}); rename the label files")
    config = TrainConfig(
        trees=trees,
        threads=threads,
        decision_threshold=threshold,
        region_threshold=0.1 if regions else None,
    )

    def progress(what: str) -> None:
        click.echo(f"train: {what}", err=True)

    samples = samples_of(pairs, config, settings, progress)
    scores = None
    if cv and len(pairs) >= 2:
        from ..evaluation.cv import leave_one_out

        report = leave_one_out(pairs, settings, config, progress=progress, samples=samples)
        scores = {
            "scheme": "leave-one-pair-out through the s2-learned preset run",
            "mean": report["mean"],
            "pairs": report["pairs"],
            "ece_pixels": report["reliability"]["ece"],
            "ece_polygons": report["reliability_polygons"]["ece"],
        }
    booster, region_booster = fit_model(samples, config)
    card = save_model(out, name, booster, training_card(pairs, samples, config, scores), region_booster)
    click.echo(f"model written: {card}")
