"""One model's experiment: train (or resume), evaluate its best checkpoint on the test split,
write MODEL_DIR/<model>/metrics.json, confusion.png and curves.png."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

import keras
import tensorflow as tf

from models import builder, evaluation, report, trainer
from pipeline import lock, storage
from pipeline.manifest import Manifest
from pipeline.progress import Progress

log = logging.getLogger(__name__)

METRICS = "metrics.json"


def load_result(run_dir: str) -> dict[str, Any] | None:
    """What a finished run wrote to RUN_DIR/metrics.json (the dict train_and_evaluate returned),
    or None where there is no such file: the run has not finished, or never started."""
    path = os.path.join(run_dir, METRICS)
    if not storage.exists(path):
        return None
    return json.loads(storage.read_text(path))


def train_and_evaluate(name: str, config: trainer.TrainConfig, strategy: tf.distribute.Strategy, manifest: Manifest,
                       progress: Progress | None = None) -> dict[str, Any] | None:
    """Returns the metrics written to MODEL_DIR/<name>/metrics.json; None on a non-chief worker,
    which trains its share and leaves evaluation and files to the chief.

    test_accuracy is the clip accuracy (the centre view); test_video_accuracy averages the
    probabilities of the clip's K views (segment sampling's test-time averaging; equal with K = 1).
    """
    roles = manifest.roles(config.fold)
    for role, splits in (("validation", roles.validation), ("test", roles.test)):
        if manifest.count(splits) == 0:
            raise ValueError(f"{config.data_dir}: the {role} split ({'+'.join(splits)}) is empty; "
                             "prepare more clips or other --split_fractions")
    if not trainer.is_chief(strategy):  # the chief holds the run dir; the others write nothing there
        trainer.train(name, config, strategy, manifest, progress)
        return None
    with lock.hold(os.path.join(config.model_dir, name), "train"):
        return _train_and_evaluate(name, config, strategy, manifest, progress)


def _train_and_evaluate(name: str, config: trainer.TrainConfig, strategy: tf.distribute.Strategy, manifest: Manifest,
                        progress: Progress | None) -> dict[str, Any]:
    run_dir = os.path.join(config.model_dir, name)
    roles = manifest.roles(config.fold)
    state = trainer.train(name, config, strategy, manifest, progress)
    # Loaded outside the strategy, so evaluation runs on one device: the test split is small next
    # to training, and predict_on_batch under MirroredStrategy hands every replica the whole batch.
    model = keras.models.load_model(os.path.join(run_dir, trainer.BEST))
    labels, probs = evaluation.predict_split(model, config.data_dir, manifest, roles.test, config.batch_size)
    video_probs = evaluation.predict_views(model, config.data_dir, manifest, roles.test, config.batch_size, centre=probs)
    history = state["history"]
    recipe = trainer.recipe_of(config, name)
    result = {
        "model": name,
        "display_name": builder.DISPLAY_NAMES[name],
        "recipe": recipe.label,
        "frame_input": recipe.frame_input,
        "recipe_settings": dataclasses.asdict(recipe),  # what the run trained with: the recipe, its front end's, the flags
        "fold": config.fold,
        **evaluation.classification_metrics(labels, probs, manifest.label_names),
        "test_video_accuracy": evaluation.accuracy(labels, video_probs),
        "best_val_accuracy": state["best_val_accuracy"],
        "best_epoch": state["best_epoch"],
        "epochs_run": state["epochs_run"],
        "stopped_early": state["stopped_early"],
        "trainable_params": builder.trainable_params(model),
        "label_names": list(manifest.label_names),
        "train_clips_per_second": trainer.clips_per_second(history),
        "train_seconds": sum(e["train_seconds"] for e in history),
        "history": history,
        "config": dataclasses.asdict(config),
        "replicas": strategy.num_replicas_in_sync,
    }
    trainer.write_json(os.path.join(run_dir, METRICS), result)
    title = f"{builder.DISPLAY_NAMES[name]}: test accuracy {result['test_accuracy']:.3f}"
    report.plot_confusion(result["confusion_matrix"], manifest.label_names, title, os.path.join(run_dir, "confusion.png"))
    report.plot_learning_curves(history, builder.DISPLAY_NAMES[name], os.path.join(run_dir, "curves.png"))
    log.info(
        "%s: test accuracy %.3f (video %.3f), top-3 %.3f, loss %.3f over %d clips; %.1f train clips/s",
        name, result["test_accuracy"], result["test_video_accuracy"], result["test_top3_accuracy"], result["test_loss"],
        result["num_test_examples"], result["train_clips_per_second"],
    )
    return result
