"""A supernet search on a predictor of its scores (`search.predictor`): the sample the supernet scores, the fit,
and the scores the strategy then sees in place of the supernet's (`supernet.search.predictor` has the model)."""

from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from supernet.config.schema import Config, SearchConfig
from supernet.core.errors import ConfigError
from supernet.core.logs import get_logger
from supernet.jobs.scores import ScoreMany, Scores
from supernet.search.predictor import AdditivePredictor, PairPredictor, fit_model, predictor_sample
from supernet.space import SearchSpace

logger = get_logger(__name__)

PREDICTOR_CHUNK = 25  # sample archs scored (and journaled) at a time: a killed fit resumes from the last chunk


def check_predictor(cfg: Config) -> None:
    """Refuse racing on a predictor: racing stops a supernet evaluation early, and a predicted score has none."""
    if cfg.search.predictor != "none" and cfg.search.racing:
        raise ConfigError(
            f"search.racing stops supernet evaluations early and search.predictor ({cfg.search.predictor}) "
            "scores archs without them; set one of them off"
        )


def refuse_predictor(cfg: Config) -> None:
    """A predictor stands in for a supernet's scores; a table or a benchmark holds the true ones."""
    if cfg.search.predictor != "none":
        raise ConfigError(
            f"search.predictor ({cfg.search.predictor}) stands in for a supernet's scores; a table or benchmark "
            "search reads the true scores: set search.predictor=none"
        )


def predicted_scores(search: SearchConfig, space: SearchSpace, supernet: Scores) -> Scores:
    """The scores of `search.predictor`, fitted to the supernet's: kept in the run's journal only, under a key of
    the supernet's and the predictor's settings (a resume with other settings is refused)."""
    assert supernet.cache is not None  # the sample's scores are the checkpoint's, shared
    model = fit_predictor(search, space, supernet.evaluate_many, supernet.key, supernet.cache)
    evaluate = lambda a: {"accuracy": model.predict(a)}  # noqa: E731
    key, evaluation = predicted_identity(search, supernet)
    source = {**supernet.source, "evaluation": evaluation, "predictor": describe_predictor(model, search)}
    return Scores(evaluate, lambda archs: [evaluate(a) for a in archs], key, None, source)


def predicted_identity(search: SearchConfig, supernet: Scores) -> tuple[str, dict[str, Any]]:
    """The journal key and the evaluation settings of the scores `predicted_scores` gives (the search's identity,
    known before the fit: a run directory the search would refuse is refused before the sample is scored): the
    supernet's, and the predictor's settings."""
    evaluation = {**supernet.source["evaluation"], "predictor": predictor_settings(search)}
    return predictor_key(supernet.key, search), evaluation


def predictor_key(key: str, search: SearchConfig) -> str:
    """The journal key of predicted scores: the supernet's evaluation `key` and the predictor's settings."""
    blob = json.dumps({**predictor_settings(search), "seed": search.seed}, sort_keys=True).encode()
    return f"{key}:predictor:{hashlib.sha256(blob).hexdigest()[:16]}"


def fit_predictor(
    search: SearchConfig, space: SearchSpace, evaluate_many: ScoreMany, key: str, cache: Path
) -> AdditivePredictor | PairPredictor:
    """`search.predictor` fitted to the supernet's scores of its sample (`search.predictor_samples` archs drawn
    by `search.predictor_design` with `search.seed`). The scores are read from and written to the shared
    evaluation cache under `key`, so a resumed search, or another budget's search of the same supernet, scores
    none of them twice. Under torchrun every rank scores the missing archs (the same numbers); rank 0 keeps them."""
    from supernet.search import Journal
    from supernet.search.distributed import is_main_rank

    archs = predictor_sample(space, search.predictor_samples, search.seed, search.predictor_design)
    writer = is_main_rank()
    with Journal(cache) if writer or cache.exists() else nullcontext() as journal:
        known = dict(journal.lookup(key, space)) if journal is not None else {}
        missing = sorted(a for a in archs if a not in known)  # prefix order: a chunk shares its first layers
        for start in range(0, len(missing), PREDICTOR_CHUNK):
            done = len(archs) - len(missing) + start
            logger.info(f"search: supernet scores for the {search.predictor} predictor, {done} of {len(archs)} known")
            chunk = missing[start : start + PREDICTOR_CHUNK]
            for arch, metrics in zip(chunk, evaluate_many(chunk), strict=True):
                known[arch] = metrics
                if writer and journal is not None:
                    journal.record(key, arch, metrics, None)
    scores = [known[a]["accuracy"] for a in archs]
    model = fit_model(search.predictor, space, archs, scores, search.predictor_ridge, search.predictor_pair_ridge)
    logger.info(f"search: {search.predictor} predictor fitted to {len(archs)} supernet scores (R^2 {model.r2:.3f})")
    return model


def predictor_settings(search: SearchConfig) -> dict[str, Any]:
    return {
        "kind": search.predictor,
        "samples": search.predictor_samples,
        "design": search.predictor_design,
        "ridge": search.predictor_ridge,
        # only for `pairs`: an additive search's journal key (and the scores cached under it) stays what it was
        **({"pair_ridge": search.predictor_pair_ridge} if search.predictor == "pairs" else {}),
    }


def describe_predictor(model: AdditivePredictor | PairPredictor, search: SearchConfig) -> dict[str, Any]:
    """The predictor as result.json records it: its settings, its fit, each layer's weight per choice and, for
    `pairs`, each adjacent layer pair's weight per pair of choices ("choice+choice")."""
    layers = model.space.layers
    described = {
        **predictor_settings(search),
        "r2": model.r2,
        "intercept": model.intercept,
        "weights": [dict(zip(layer.choices, w, strict=True)) for layer, w in zip(layers, model.weights)],
    }
    if isinstance(model, PairPredictor):
        names = [[f"{a}+{b}" for a in one.choices for b in two.choices] for one, two in zip(layers, layers[1:])]
        described["pair_weights"] = [dict(zip(n, w, strict=True)) for n, w in zip(names, model.pair_weights)]
    return described
