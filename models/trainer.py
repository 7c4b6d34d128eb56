"""Training one model: distributed input, checkpoints that survive kill -9, early stopping.

MODEL_DIR/<model>/ holds:
    state.json        epochs run, per-epoch history, best validation accuracy, early-stopping
                      count, and which checkpoint is the latest (written last, atomically)
    history.json      the per-epoch history (loss, accuracy, top-3, validation, clips/s)
    latest-NNNN.keras model + optimizer after epoch NNNN (what a restarted run resumes from)
    best.keras        the model of the epoch with the best validation accuracy
    logs/             TensorBoard

A restarted run with the same command loads the latest checkpoint named in state.json and
continues at the next epoch; a checkpoint file is written under a temporary name and renamed,
and state.json only names complete files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import statistics
import sys
import time
from typing import Any

import keras
import tensorflow as tf

from models import builder, multi_worker, recipes
from models import strategy as strategy_lib
from pipeline import storage
from pipeline.clip_spec import ClipSpec
from pipeline.input.dataset import make_dataset
from pipeline.manifest import Manifest
from pipeline.progress import Progress

log = logging.getLogger(__name__)

STATE = "state.json"
HISTORY = "history.json"
BEST = "best.keras"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    data_dir: str
    model_dir: str
    epochs: int = 50
    batch_size: int = 64  # global, over all replicas
    recipe: str = "improved"  # models.recipes.RECIPES
    without: tuple[str, ...] = ()  # parts of the recipe switched off (ablations)
    overrides: recipes.Overrides = recipes.Overrides()  # the recipe's settings changed for this run
    backbone_weights: str | None = None  # mobilenet_gru: None, "imagenet" or a weights file
    seed: int = 0
    deterministic: bool = False
    jit_compile: bool = False
    early_stopping: int = 0  # patience in epochs without a better val accuracy; 0 = off
    steps_per_epoch: int = 0  # 0 = one pass over the training split
    shuffle_buffer: int = 512
    data_service: str = ""  # grpc://host:port of a tf.data service dispatcher, or "" to read locally
    fold: int | None = None  # with a data dir of folds: the fold tested (the next one validates)
    fit_validation: bool = False  # train on the validation split too and keep the last epoch (settings already chosen)

    def train_splits(self, manifest: Manifest) -> tuple[str, ...]:
        roles = manifest.roles(self.fold)
        return roles.train + roles.validation if self.fit_validation else roles.train


def write_json(path: str, data: Any) -> None:
    storage.write_atomic(path, json.dumps(data, indent=1))


def save_model(model: keras.Model, path: str) -> None:
    """model.save under a temporary name, then rename: `path` is always a complete file. An OS
    error (a full disk) names the file, and the partial temporary is removed."""
    tmp = path[: -len(".keras")] + ".tmp.keras"
    try:
        model.save(tmp)
    except OSError as e:
        if storage.exists(tmp):
            storage.remove(tmp)
        raise OSError(e.errno, e.strerror or str(e), e.filename or tmp) from e
    storage.rename(tmp, path)


def compile_model(model: keras.Model, recipe: recipes.Recipe, total_steps: int, jit_compile: bool) -> None:
    """The recipe's optimizer and loss (cross-entropy, label smoothing if any), accuracy and top-3.

    Under a mixed_float16 policy the optimizer is wrapped in a LossScaleOptimizer, so small
    float16 gradients do not underflow (the original ran mixed_float16 without loss scaling).
    """
    optimizer = recipes.optimizer(recipe, total_steps)
    if keras.mixed_precision.dtype_policy().name == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(
        optimizer=optimizer,
        loss=recipes.SparseCrossentropy(recipe.label_smoothing),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=3, name="top3_accuracy"),
        ],
        jit_compile=jit_compile,
    )


def new_state(name: str, manifest: Manifest, recipe: str, frame_input: str, fold: int | None = None,
              fit_validation: bool = False) -> dict[str, Any]:
    return {
        "model": name,
        "input_shape": list(manifest.clip.model_input_shape()),
        "clip": manifest.clip.to_dict(),  # for export and predict: how a video becomes this model's input
        "label_names": list(manifest.label_names),
        "clip_seconds": manifest.median_seconds(manifest.roles(fold).train),  # a timeline's default window
        "recipe": recipe,
        "frame_input": frame_input,
        "fit_validation": fit_validation,  # trained on the validation split too: the best checkpoint is the last epoch
        "epochs_run": 0,
        "history": [],
        "best_val_accuracy": None,
        "best_epoch": 0,
        "epochs_without_improvement": 0,
        "stopped_early": False,
        "latest": None,
        "seed_states": [],  # each random layer's generator state after the last finished epoch
    }


def load_state(run_dir: str, name: str, manifest: Manifest, recipe: str, frame_input: str,
               fold: int | None = None, fit_validation: bool = False) -> dict[str, Any]:
    """The saved state of a run, or a new one; refuses a run made on data of another shape, or
    with another recipe or frame input."""
    path = os.path.join(run_dir, STATE)
    fresh = new_state(name, manifest, recipe, frame_input, fold, fit_validation)
    if not storage.exists(path):
        return fresh
    state = json.loads(storage.read_text(path))
    state.setdefault("fit_validation", False)  # a run from before the option
    for key in ("input_shape", "clip", "label_names", "recipe", "frame_input", "fit_validation"):
        if state.get(key) != fresh[key]:
            raise ValueError(
                f"{path}: this run was trained with {key} {state.get(key)}, not {fresh[key]} as asked now "
                "(data dir's manifest, --recipe, --frame_input, --fit_validation); use another --model_dir"
            )
    return state


def _seed_generators(model: keras.Model) -> list[Any]:
    """The random layers' seed generators (Dropout's and the like), in a fixed layer order."""
    return [g for layer in model._flatten_layers(include_self=False) if (g := getattr(layer, "seed_generator", None)) is not None]


def seed_states(model: keras.Model) -> list[list[int]]:
    """Each random layer's generator state: what .keras files do not keep, and a resumed run
    needs to draw the same dropout masks as an uninterrupted one."""
    return [keras.ops.convert_to_numpy(g.state).tolist() for g in _seed_generators(model)]


def restore_seed_states(model: keras.Model, states: list[list[int]]) -> None:
    generators = _seed_generators(model)
    if states and len(states) != len(generators):
        raise ValueError(f"state.json holds {len(states)} seed states for a model with {len(generators)} random layers")
    for generator, state in zip(generators, states):
        generator.state.assign(keras.ops.convert_to_tensor(state, dtype=generator.state.dtype))


class Checkpointing(keras.callbacks.Callback):
    """After each epoch: history, best model, latest checkpoint, early stopping, state.json.

    Every worker keeps the state (it decides early stopping); only the chief writes files.
    """

    def __init__(self, run_dir: str, state: dict[str, Any], clips_per_epoch: int, patience: int, is_chief: bool = True,
                 keep_last: bool = False):
        super().__init__()
        self.run_dir, self.state, self.clips, self.patience = run_dir, state, clips_per_epoch, patience
        self.is_chief, self.keep_last = is_chief, keep_last  # keep_last: the validation split is trained on
        self._start = self._train_end = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._train_end = time.monotonic(), 0.0

    def on_test_begin(self, logs=None):  # validation starts: the training part of the epoch is over
        self._train_end = self._train_end or time.monotonic()

    def _write(self, improved: bool, previous: str | None, latest: str) -> None:
        if improved:
            save_model(self.model, os.path.join(self.run_dir, BEST))
        save_model(self.model, os.path.join(self.run_dir, latest))
        write_json(os.path.join(self.run_dir, HISTORY), self.state["history"])
        write_json(os.path.join(self.run_dir, STATE), self.state)  # names only complete files
        if previous and previous != latest:
            storage.remove(os.path.join(self.run_dir, previous))

    def on_epoch_end(self, epoch, logs=None):
        now = time.monotonic()
        train_seconds = (self._train_end or now) - self._start
        entry = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        entry.update(train_seconds=train_seconds, epoch_seconds=now - self._start, clips_per_second=self.clips / train_seconds)
        s = self.state
        s["history"].append(entry)
        s["epochs_run"] = epoch + 1
        val = entry.get("val_accuracy")
        best = s["best_val_accuracy"]
        # The best checkpoint is the latest epoch with the best validation accuracy: a small
        # validation split ties often (10 clips: steps of 0.1), and of tied epochs the later one
        # has trained longer at a lower rate. Early stopping counts strict improvements only.
        # With keep_last (the validation split is trained on) every epoch is the best so far.
        better = not self.keep_last and val is not None and (best is None or val > best)
        kept = better or self.keep_last or (val is not None and val == best)
        if better:
            s.update(best_val_accuracy=val, best_epoch=epoch + 1, epochs_without_improvement=0)
        else:
            s["epochs_without_improvement"] += 1
            if kept:
                s["best_epoch"] = epoch + 1
        if self.patience and s["epochs_without_improvement"] >= self.patience:
            s["stopped_early"] = True
            self.model.stop_training = True
        previous, latest = s["latest"], f"latest-{epoch + 1:04d}.keras"
        s["latest"] = latest
        s["seed_states"] = seed_states(self.model)
        if self.is_chief:
            self._write(kept, previous, latest)
        log.info(
            "%s epoch %d: loss %.4f accuracy %.3f val_loss %.4f val_accuracy %.3f (%.1f clips/s)",
            s["model"], epoch + 1, entry.get("loss", float("nan")), entry.get("accuracy", float("nan")),
            entry.get("val_loss", float("nan")), entry.get("val_accuracy", float("nan")), entry["clips_per_second"],
        )


class StepLog(keras.callbacks.Callback):
    """Per-step progress as log lines when there is no terminal for Keras' progress bar."""

    def __init__(self, name: str, steps: int, every: float = 30.0):
        super().__init__()
        self.name, self.steps, self.every, self._last = name, steps, every, 0.0

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            log.info("%s step %d/%d: loss %.4f", self.name, batch + 1, self.steps, float((logs or {}).get("loss", float("nan"))))


class JobProgress(keras.callbacks.Callback):
    """Counts each finished epoch on the whole job's Progress (several models, folds or recipes)."""

    def __init__(self, progress: Progress):
        super().__init__()
        self.progress = progress

    def on_epoch_end(self, epoch, logs=None):
        self.progress.update(1)


def recipe_of(config: TrainConfig, name: str | None) -> recipes.Recipe:
    """The recipe model `name` trains with under `config` (its front end's settings, then the
    flags); name None: the recipe's settings for every model (its augmentation is one of them)."""
    return recipes.get(config.recipe, config.without, model=name, **dataclasses.asdict(config.overrides))


def input_datasets(config: TrainConfig, strategy: tf.distribute.Strategy, manifest: Manifest, epochs_done: int = 0, steps: int = 0):
    """(distributed training dataset, validation dataset): each input pipeline (one per worker)
    reads its own share of the training shards, from where `epochs_done` epochs of `steps`
    steps left it (a resumed run sees the clips, views and augmentation an uninterrupted one would)."""
    strategy_lib.per_replica_batch(config.batch_size, strategy)  # refuses a batch the replicas cannot split
    roles = manifest.roles(config.fold)

    def train_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        return make_dataset(
            config.data_dir, config.train_splits(manifest), ctx.get_per_replica_batch_size(config.batch_size), training=True,
            input_context=ctx, augment=recipe_of(config, None).augment, seed=config.seed, shuffle_buffer=config.shuffle_buffer,
            deterministic=config.deterministic, manifest=manifest, data_service=config.data_service,
            skip=epochs_done * steps * config.batch_size // ctx.num_input_pipelines,
        )

    train = strategy.distribute_datasets_from_function(train_fn)
    val = make_dataset(config.data_dir, roles.validation, config.batch_size, training=False, manifest=manifest)
    return train, val


def train(name: str, config: TrainConfig, strategy: tf.distribute.Strategy, manifest: Manifest,
          progress: Progress | None = None) -> dict[str, Any]:
    """Train `name` to config.epochs (or early stop), resuming a previous run. Returns its state.

    progress: the whole job's, counting epochs (those a resumed run already has are skipped)."""
    run_dir = os.path.join(config.model_dir, name)
    storage.makedirs(run_dir)
    recipe = recipe_of(config, name)
    state = load_state(run_dir, name, manifest, recipe.label, recipe.frame_input, config.fold, config.fit_validation)
    if progress is not None:
        progress.skip(state["epochs_run"])
    if state["epochs_run"] >= config.epochs or state["stopped_early"]:
        log.info("%s: already trained (%d epochs); evaluating", name, state["epochs_run"])
        if progress is not None:
            progress.skip(max(0, config.epochs - state["epochs_run"]))
        return state
    n_train = manifest.count(config.train_splits(manifest))
    steps = config.steps_per_epoch or max(1, n_train // config.batch_size)
    train_ds, val_ds = input_datasets(config, strategy, manifest, state["epochs_run"], steps)
    with strategy.scope():
        if state["latest"]:
            log.info("%s: resuming after epoch %d from %s", name, state["epochs_run"], state["latest"])
            model = keras.models.load_model(os.path.join(run_dir, state["latest"]))
            restore_seed_states(model, state.get("seed_states", []))
            recipes.spare_from_decay(model.optimizer)
        else:
            model = build(name, manifest.clip, len(manifest.label_names), recipe, config.backbone_weights)
            compile_model(model, recipe, steps * config.epochs, config.jit_compile)
    chief = is_chief(strategy)
    callbacks: list[keras.callbacks.Callback] = [
        Checkpointing(run_dir, state, steps * config.batch_size, config.early_stopping, chief, keep_last=config.fit_validation)]
    if chief:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "logs")))
    tty = sys.stdout.isatty()
    if progress is not None:
        callbacks.append(JobProgress(progress))
    if not tty:
        callbacks.append(StepLog(name, steps))
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        multi_worker.fit(
            model, strategy, train_ds, val_ds, global_batch=config.batch_size, epochs=config.epochs,
            initial_epoch=state["epochs_run"], steps_per_epoch=steps, callbacks=callbacks,
        )
    else:
        model.fit(
            train_ds, epochs=config.epochs, initial_epoch=state["epochs_run"], steps_per_epoch=steps,
            validation_data=val_ds, callbacks=callbacks, verbose=1 if tty and progress is None else 0, shuffle=False,
        )
    if progress is not None:  # early stopping: the epochs it saved are not to come
        progress.skip(max(0, config.epochs - state["epochs_run"]))
    log.info("%s: trained %d epochs; weights digest %s", name, state["epochs_run"], weights_digest(model))
    return state


def build(name: str, clip: ClipSpec, num_classes: int, recipe: recipes.Recipe, backbone_weights: str | None = None) -> keras.Model:
    """The model `name` for clips of `clip`, with what the recipe changes of it (input, view, normalization)."""
    return builder.build_model(
        name, num_frames=clip.num_frames, height=clip.height, width=clip.width, num_classes=num_classes,
        feature_norm=recipes.normalizes_features(recipe, name), frame_input=recipe.frame_input,
        backbone_weights=backbone_weights, frames_per_step=clip.frames_per_step, dropout=recipe.dropout, view=recipe.view,
    )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints and reports: always, except on the non-chief
    workers of a multi-worker cluster (TF_CONFIG's chief, or worker 0 when there is none)."""
    return strategy.extended.should_checkpoint


def weights_digest(model: keras.Model) -> str:
    """A short hash of every weight's bytes: equal on all workers of a synchronous run."""
    h = hashlib.sha256()
    for w in model.weights:
        h.update(keras.ops.convert_to_numpy(w).tobytes())
    return h.hexdigest()[:16]


def clips_per_second(history: list[dict[str, Any]]) -> float:
    """Training throughput: median over epochs, leaving out the first (tracing and warm-up)."""
    rates = [e["clips_per_second"] for e in history]
    if not rates:
        return 0.0
    return float(statistics.median(rates[1:] if len(rates) > 1 else rates))
