"""Fit the learned change model from labelled pairs.

Each pair is read whole on its run grid, exactly as ``s2-learned`` reads a scene (the
s2-imad plan: same bands, cloud mask, resampling), s2-imad's MAD is fitted on it and
the features of its candidate pixels (``detect.s2.learned.candidates``) with a label
are sampled (``TrainConfig.max_px_per_pair``, each pair weighing the same). A
LightGBM binary model is fitted on them (``TrainConfig``); ``eowatch.evaluation.cv``
cross-validates it through the real preset run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import __version__
from ..detect.s2.features import FEATURE_BANDS, FEATURE_NAMES, REGION_FEATURE_NAMES, region_features
from ..detect.s2.imad import IMADPreset
from ..detect.s2.learned import candidate_features, candidates, imad_params
from ..errors import InputError
from ..model import Block, Scene
from ..pipeline import DetectRequest, plan_pair
from ..settings import Settings
from .artifact import LearnedModel, _lightgbm
from .pairs import LabelledPair, read_labels

__all__ = [
    "TrainConfig",
    "PairSamples",
    "pair_samples",
    "samples_of",
    "fit_booster",
    "fit_region_booster",
    "fit_model",
    "training_card",
]


@dataclass(frozen=True)
class TrainConfig:
    """What is learned and how. The defaults were chosen on OSCD leave-one-city-out runs
    (candidate alpha 1e-3 / 1e-2 / 5e-2, thresholds 0.15-0.3, 50/100 trees and the region
    stage compared; see the README)."""

    mad_bands: tuple[str, ...] = ("B02", "B03", "B04", "B08")
    candidate_alpha: float = 1e-2
    decision_threshold: float = 0.25
    #: Regions of pixel probability above this are rated by a region model fitted on
    #: out-of-fold pixel probabilities (leave-one-pair-out); None: pixel route only (the
    #: default: with 0.1, OSCD leave-one-city-out F1 0.430 -> 0.430, pixel ECE 0.048 -> 0.118).
    region_threshold: float | None = None
    region_trees: int = 150
    #: Cloud masking of the training reads (``PresetParams.cloud_mask``): as the runs'.
    cloud_mask: str = "auto"
    trees: int = 50
    leaves: int = 15
    learning_rate: float = 0.1
    min_leaf: int = 200
    max_px_per_pair: int = 60_000
    threads: int = 2
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PairSamples:
    """A pair's sampled candidate pixels (``sample`` rows of ``rows``: features, labels),
    every candidate's features (``rows``, at flat indices ``at`` of a ``shape`` grid, for
    the out-of-fold maps of the region stage), its labels and their counts."""

    name: str
    rows: NDArray[np.float32]
    at: NDArray[np.intp]
    sample: NDArray[np.intp]
    shape: tuple[int, int]
    known: NDArray[np.bool_]
    truth: NDArray[np.bool_]
    labelled_px: int
    change_px: int
    candidate_recall: float

    @property
    def features(self) -> NDArray[np.float32]:
        return self.rows[self.sample]

    @property
    def change(self) -> NDArray[np.bool_]:
        return self.truth.ravel()[self.at[self.sample]]


def _read_whole(pair: LabelledPair, config: TrainConfig, settings: Settings) -> list[Scene]:
    params = {"bands": list(config.mad_bands), "cloud_mask": config.cloud_mask}
    plan = plan_pair(DetectRequest(pair.before, pair.after, "s2-imad", params), settings)
    scenes = []
    for source in plan.sources:
        reader = source.open()
        try:
            scene, _ = reader.read(Block(0, 0, plan.grid.height, plan.grid.width))
        finally:
            reader.close()
        scenes.append(scene)
    missing = [b for b in (*config.mad_bands, *FEATURE_BANDS) if b not in scenes[0].bands]
    if missing:
        raise InputError(f"pair {pair.name} lacks bands {missing} that the model reads")
    return scenes


def pair_samples(pair: LabelledPair, config: TrainConfig, settings: Settings) -> PairSamples:
    """Sampled labelled candidate pixels of ``pair``."""
    scenes = _read_whole(pair, config, settings)
    labels = read_labels(pair, scenes[0].valid.shape)
    imad = IMADPreset().fit(scenes, imad_params(config.mad_bands, config.candidate_alpha))
    chi2, candidate = candidates(scenes[0], scenes[1], imad, config.mad_bands, config.candidate_alpha)
    usable = candidate & labels.known
    if not usable.any():
        raise InputError(f"pair {pair.name}: no labelled pixel is a change candidate; nothing to learn")
    at = np.flatnonzero(candidate)
    sample = np.flatnonzero(labels.known.ravel()[at])
    rng = np.random.default_rng(config.seed)
    if sample.size > config.max_px_per_pair:
        sample = np.sort(rng.choice(sample, config.max_px_per_pair, replace=False))
    recall = float((usable & labels.change).sum() / max(labels.change_px, 1))
    return PairSamples(
        pair.name,
        candidate_features(scenes[0], scenes[1], imad, config.mad_bands, chi2, at),
        at,
        sample,
        (int(chi2.shape[0]), int(chi2.shape[1])),
        labels.known,
        labels.change,
        labels.labelled_px,
        labels.change_px,
        recall,
    )


def fit_booster(samples: Sequence[PairSamples], config: TrainConfig) -> str:
    """The LightGBM model text fitted on ``samples`` (each pair weighing the same)."""
    if not samples:
        raise InputError("no training pairs")
    y = np.concatenate([s.change for s in samples])
    if not y.any():
        raise InputError("the training pairs' candidates hold no change pixel; add pairs with change")
    x = np.concatenate([s.features for s in samples])
    w = np.concatenate([np.full(s.change.size, 1.0 / s.change.size) for s in samples])
    w *= w.size / w.sum()
    lgb = _lightgbm()
    params = {
        "objective": "binary",
        "num_leaves": config.leaves,
        "learning_rate": config.learning_rate,
        "min_data_in_leaf": config.min_leaf,
        "bagging_fraction": 0.5,
        "bagging_freq": 1,
        "feature_fraction": 0.7,
        "num_threads": config.threads,
        "seed": config.seed,
        "deterministic": True,
        "verbose": -1,
    }
    data = lgb.Dataset(x, y.astype(np.float64), weight=w, feature_name=list(FEATURE_NAMES))
    booster = lgb.train(params, data, num_boost_round=config.trees)
    return str(booster.model_to_string())


def _probability_map(samples: PairSamples, booster_text: str) -> NDArray[np.float32]:
    model = LearnedModel({}, booster_text)
    probability = np.zeros(samples.shape, dtype=np.float32)
    probability.ravel()[samples.at] = model.predict(samples.rows)
    return probability


def fit_region_booster(samples: Sequence[PairSamples], config: TrainConfig) -> str | None:
    """The region stage: a model of each region's changed share from its pixel-probability
    statistics (``REGION_FEATURE_NAMES``), fitted on out-of-fold probability maps (each
    pair's from a pixel model trained on the other pairs). None without the stage or with
    fewer than 2 pairs."""
    if config.region_threshold is None or len(samples) < 2:
        return None
    xs, ys, ws = [], [], []
    for i, held in enumerate(samples):
        text = fit_booster([s for j, s in enumerate(samples) if j != i], config)
        found, features = region_features(_probability_map(held, text), config.region_threshold)
        if not found.count:
            continue
        known = np.bincount(found.pixel_labels, held.known.ravel()[found.inside], found.count + 1)[1:]
        change = np.bincount(found.pixel_labels, held.truth.ravel()[found.inside], found.count + 1)[1:]
        keep = known > 0
        xs.append(features[keep])
        ys.append(change[keep] / known[keep])
        ws.append(np.sqrt(known[keep] + 1.0))
    if not xs:
        return None
    lgb = _lightgbm()
    params = {
        "objective": "cross_entropy",
        "num_leaves": 7,
        "learning_rate": 0.05,
        "min_data_in_leaf": 30,
        "num_threads": config.threads,
        "seed": config.seed,
        "deterministic": True,
        "verbose": -1,
    }
    data = lgb.Dataset(np.concatenate(xs), np.concatenate(ys), weight=np.concatenate(ws),
                       feature_name=list(REGION_FEATURE_NAMES))  # fmt: skip
    return str(lgb.train(params, data, num_boost_round=config.region_trees).model_to_string())


def fit_model(samples: Sequence[PairSamples], config: TrainConfig) -> tuple[str, str | None]:
    """The pixel model on every pair and the region stage's model (or None)."""
    return fit_booster(samples, config), fit_region_booster(samples, config)


def training_card(
    pairs: Sequence[LabelledPair],
    samples: Sequence[PairSamples],
    config: TrainConfig,
    cross_validation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The model card's fields (``artifact.save_model`` adds name, version, id, file, hash)."""
    licences = sorted({p.licence for p in pairs})
    return {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "eowatch_version": __version__,
        "preset": "s2-learned",
        "model": {"family": "lightgbm-binary", "trees": config.trees, "leaves": config.leaves},
        "bands": list(dict.fromkeys((*config.mad_bands, *FEATURE_BANDS))),
        "mad_bands": list(config.mad_bands),
        "candidate_alpha": config.candidate_alpha,
        "decision_threshold": config.decision_threshold,
        "region_threshold": config.region_threshold,
        "features": list(FEATURE_NAMES),
        "region_features": list(REGION_FEATURE_NAMES),
        "label_licence": "; ".join(licences),
        "training_data": [
            {
                "name": p.name,
                "source": p.source or str(p.label),
                "licence": p.licence,
                "labelled_px": s.labelled_px,
                "change_px": s.change_px,
                "sampled_px": int(s.sample.size),
                "candidate_recall": round(s.candidate_recall, 4),
            }
            for p, s in zip(pairs, samples, strict=True)
        ],
        "config": {k: v for k, v in asdict(config).items() if k != "extra"} | dict(config.extra),
        "cross_validation": cross_validation,
    }


def samples_of(
    pairs: Sequence[LabelledPair],
    config: TrainConfig,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
) -> list[PairSamples]:
    """``pair_samples`` of every pair."""
    out = []
    for pair in pairs:
        if progress:
            progress(pair.name)
        out.append(pair_samples(pair, config, settings))
    return out
