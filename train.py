"""Train one of the models (the six of the original project and two more), or all of them, on prepared shards;
evaluate on the test split (or each fold of a cross-validation).

    python train.py --data_dir=OUT --model=cnn_gru --model_dir=runs/x [flags]
    python train.py --data_dir=OUT --model=all --model_dir=runs/x   # + comparison.md
    python train.py --model=all --model_dir=runs/x --report_only    # comparison.md of finished runs
    python train.py --data_dir=FOLDS --model=cnn_gru --model_dir=runs/cv  # every fold: cross_validation.md

Flags only choose and override; the work is in `models/` and `pipeline/`.
"""

from __future__ import annotations

import contextlib
import os

from absl import app, flags, logging

from models import kinds
from pipeline import cli, lock

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Output dir of `python -m pipeline.prepare` (holds manifest.json).")
flags.DEFINE_string("model", "convnet_gru", f"One of {', '.join(kinds.MODEL_NAMES)}, or 'all'. The default is the "
                    "model most accurate on real video (BUILD_NOTES.md).")
flags.DEFINE_string("model_dir", "runs/train", "Checkpoints, logs, metrics and reports go to MODEL_DIR/<model>/.")
flags.DEFINE_integer("epochs", 50, "Epochs (the original's recipe: 50).")
flags.DEFINE_integer("batch_size", 64, "Global batch size, split over replicas.")
flags.DEFINE_list("recipe", ["improved"], "Training recipe(s): improved (motion input, feature normalization, schedule, "
                  "regularization, augmentation) or paper (the original's); several, comma-separated, train each model under "
                  "each into MODEL_DIR/<recipe>/ and compare them.")
flags.DEFINE_list("without", [], "Parts of the recipe to switch off (ablations): feature_norm, schedule, clipping, "
                  "weight_decay, label_smoothing, augment, motion, actor_view.")
flags.DEFINE_float("learning_rate", None, "Learning rate (the peak, with a schedule); default: the recipe's (improved 3e-4, "
                   "paper 1e-4).", lower_bound=0.0)
flags.DEFINE_string("frame_input", None, "What the model sees of each frame, parts joined by '+': rgb (pixels), diff "
                    "(minus the frame kept before: change of pose), next_diff (the partner frame minus it: motion; data "
                    "prepared --with_next), bg_diff (minus the clip's per-pixel median: the moving actor), flow (the "
                    "optical flow to the partner frame; data prepared --flow), e.g. bg_diff+flow; computed inside the "
                    "model; default: the recipe's.")
flags.register_validator("frame_input", lambda v: v is None or _valid_frame_input(v),
                         message=f"a '+' join of {', '.join(kinds.FRAME_INPUT_PARTS)}")
flags.DEFINE_enum("view", None, list(kinds.VIEWS), "Where each time step's front end looks: frame (the whole frame) or "
                  "actor (a box that follows the moving actor, at the stored frames' full detail, with the box's track "
                  "beside the frame features); default: the recipe's (improved: actor for convnet_gru).")
flags.DEFINE_string("backbone_weights", None, "mobilenet_gru: 'imagenet' (downloaded by Keras) or a local weights file of "
                    "the MobileNetV3-Small backbone; default: from scratch.")
flags.DEFINE_enum("strategy", "mirrored", list(kinds.STRATEGIES), "Distribution strategy.")
flags.DEFINE_string("tpu", "", "TPU name or address, with --strategy=tpu.")
flags.DEFINE_enum("mixed_precision", "none", list(kinds.PRECISIONS), "Compute precision policy.")
flags.DEFINE_bool("jit_compile", False, "Compile train steps with XLA.")
flags.DEFINE_integer("seed", 0, "Seed for weights, shuffling and augmentation.")
flags.DEFINE_bool("deterministic", False, "Deterministic ops and input order (slower).")
flags.DEFINE_float("augment", None, "Strength of the training augmentation (flip, exposure jitter, small crop), 0 (off) "
                   "to 1 (full ranges); default: the recipe's.", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("dropout", None, "Dropout rate of the models' dropout layers; default: the recipe's (0.5, the original's).")
flags.register_validator("dropout", lambda v: v is None or 0.0 <= v < 1.0, message="a rate in [0, 1)")
flags.DEFINE_float("weight_decay", None, "AdamW's decoupled weight decay: each step shrinks the weights by learning rate x "
                   "this; default: the recipe's (improved 0.05; 0: plain Adam).", lower_bound=0.0)
flags.DEFINE_bool("fit_validation", False, "Train on the validation split too and keep the last epoch: for the final "
                  "model once the settings (epochs included) are chosen on validation. Its validation figures are then "
                  "on seen clips; the test split stays unseen.")
flags.DEFINE_integer("early_stopping", 0, "Stop after this many epochs without a better validation accuracy (0: off).")
flags.DEFINE_integer("steps_per_epoch", 0, "Training steps per epoch (0: one pass over the training split).")
flags.DEFINE_string("data_service", "", "grpc://HOST:PORT of a tf.data service dispatcher: its workers read and decode.")
flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many logical devices (MirroredStrategy without GPUs).")
flags.DEFINE_list("folds", ["all"], "With a data dir prepared --num_folds=K: the folds to test, 'all' or numbers "
                  "(fold i is tested, fold i+1 chooses the best epoch, the others train; runs go to MODEL_DIR/fold-<i>/).")
flags.DEFINE_bool("summary_only", False, "Print each selected model's trainable parameter count and exit.")
flags.DEFINE_bool("report_only", False, "Train nothing: write MODEL_DIR's comparison report from the finished runs of the "
                  "selected models and recipes (their metrics.json; e.g. after one job per model) and exit.")


def _valid_frame_input(value: str) -> bool:
    try:
        kinds.frame_input_parts(value)
    except ValueError:
        return False
    return True


def _model_names() -> list[str]:
    if FLAGS.model == "all":
        return list(kinds.MODEL_NAMES)
    if FLAGS.model not in kinds.MODEL_NAMES:
        raise app.UsageError(f"--model: unknown {FLAGS.model!r}; choose one of {', '.join(kinds.MODEL_NAMES)} or all")
    return [FLAGS.model]


def _print_summary(names: list[str], manifest=None) -> None:
    """Each model's trainable parameter count, for the data dir's clips (default: prepare's defaults)."""
    from models import trainable_params, trainer
    from pipeline.clip_spec import PREPARED

    clip, num_classes = (manifest.clip, len(manifest.label_names)) if manifest else (PREPARED, 12)
    for name in names:
        recipe = trainer.recipe_of(_config(FLAGS.recipe[0]), name)  # as training would build it
        print(f"{name}\t{trainable_params(trainer.build(name, clip, num_classes, recipe))}")


def _model_dir(recipe: str, fold: int | None = None) -> str:
    """MODEL_DIR, or with several recipes MODEL_DIR/<recipe>/, then fold-<i>/ for a fold's runs."""
    base = FLAGS.model_dir if len(FLAGS.recipe) == 1 else os.path.join(FLAGS.model_dir, recipe)
    return base if fold is None else os.path.join(base, f"fold-{fold}")


def _folds(num_folds: int) -> list[int | None]:
    """The folds to run: [None] for fixed splits, else those --folds names."""
    if not num_folds:
        if FLAGS["folds"].present:
            raise app.UsageError("--folds: this data dir has fixed splits; prepare it with --num_folds=K for folds")
        return [None]
    if FLAGS.folds == ["all"]:
        return list(range(num_folds))
    try:
        folds = [int(f) for f in FLAGS.folds]
    except ValueError:
        raise app.UsageError(f"--folds: 'all' or fold numbers, got {','.join(FLAGS.folds)}") from None
    bad = [f for f in folds if not 0 <= f < num_folds]
    if bad:
        raise app.UsageError(f"--folds: {bad[0]} is not a fold of this data dir (0..{num_folds - 1})")
    return folds


def _fold_dirs(recipe: str) -> list[int | None]:
    """Folds with runs under MODEL_DIR (for --report_only, which reads no data dir): [None] if none."""
    from pipeline import storage

    base = _model_dir(recipe)
    names = storage.listdir(base) if storage.isdir(base) else []
    folds = sorted(int(n[5:]) for n in names if n.startswith("fold-") and n[5:].isdigit())
    return folds or [None]


def _config(recipe: str, fold: int | None = None):
    """The training settings of one recipe (and fold)."""
    from models import recipes, trainer

    return trainer.TrainConfig(
        data_dir=FLAGS.data_dir, model_dir=_model_dir(recipe, fold), epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
        recipe=recipe, without=tuple(FLAGS.without), overrides=recipes.Overrides(**{name: FLAGS[name].value for name in recipes.OVERRIDES}),
        backbone_weights=FLAGS.backbone_weights, seed=FLAGS.seed,
        deterministic=FLAGS.deterministic, jit_compile=FLAGS.jit_compile, early_stopping=FLAGS.early_stopping,
        steps_per_epoch=FLAGS.steps_per_epoch, data_service=FLAGS.data_service, fold=fold, fit_validation=FLAGS.fit_validation,
    )


def _manifest():
    """The data dir's manifest, checked before TensorFlow loads."""
    from pipeline import manifest as manifest_lib, storage

    if not FLAGS.data_dir:
        raise app.UsageError("--data_dir is required")
    try:
        storage.check_tpu_paths(FLAGS.strategy, data_dir=FLAGS.data_dir, model_dir=FLAGS.model_dir)
        return manifest_lib.load(FLAGS.data_dir)
    except (manifest_lib.ManifestError, ValueError) as e:
        raise cli.CommandError(str(e)) from None


def _run_label(i: int, total: int, name: str, recipe: str, fold: int | None) -> str:
    """'run 3/12 cnn_gru fold 2' (the recipe too when there are several)."""
    label = f"run {i}/{total} {name}"
    if len(FLAGS.recipe) > 1:
        label += f" {recipe}"
    return label if fold is None else f"{label} fold {fold}"


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    names = _model_names()
    if FLAGS.fit_validation and FLAGS.early_stopping:
        raise app.UsageError("--fit_validation trains on the validation split: --early_stopping cannot watch it")
    if FLAGS.report_only:
        cli.tensorflow()
        _report(_finished_results(names))
        return
    if FLAGS.summary_only:
        manifest = _manifest() if FLAGS.data_dir else None
        cli.tensorflow()
        _print_summary(names, manifest)
        return
    manifest = _manifest()
    folds = _folds(manifest.num_folds)
    runs = [(recipe, fold, name) for recipe in FLAGS.recipe for fold in folds for name in names]
    with contextlib.ExitStack() as held:
        if FLAGS.strategy != "multi_worker":  # there only the chief holds its run dirs (experiment), known once TF is up
            try:
                for recipe, fold, name in runs:
                    held.enter_context(lock.hold(os.path.join(_model_dir(recipe, fold), name), "train"))
            except lock.LockedError as e:
                raise cli.CommandError(str(e)) from None
        _train(manifest, runs)


def _train(manifest, runs: list[tuple[str, int | None, str]]) -> None:
    """Train and evaluate each (recipe, fold, model) run, then write the report."""
    tf = cli.tensorflow()
    import keras

    from models import experiment, strategy as strategy_lib, trainer
    from pipeline import storage
    from pipeline.progress import Progress

    tf.get_logger().setLevel("WARNING")  # tf.distribute logs every all-reduce at INFO
    if FLAGS.logical_cpus:
        strategy_lib.split_cpu(FLAGS.logical_cpus)
    keras.utils.set_random_seed(FLAGS.seed)
    if FLAGS.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy_lib.set_precision(FLAGS.mixed_precision)
    _check_inputs(manifest, runs)  # before any run: the eighth of --model=all would fail after seven trained
    strategy = strategy_lib.make_strategy(FLAGS.strategy, FLAGS.tpu)
    logging.info("%s with %d replica(s)", type(strategy).__name__, strategy.num_replicas_in_sync)
    try:
        results = []
        with Progress(len(runs) * FLAGS.epochs, "train", unit="epoch", every=60.0) as job:
            for i, (recipe, fold, name) in enumerate(runs, start=1):
                job.describe(_run_label(i, len(runs), name, recipe, fold))
                results.append(experiment.train_and_evaluate(name, _config(recipe, fold), strategy, manifest, job))
    except (ValueError, lock.LockedError) as e:
        raise cli.CommandError(str(e)) from None
    except tf.errors.UnavailableError as e:  # MultiWorkerMirroredStrategy: a peer stopped
        raise cli.CommandError(f"a worker of the cluster stopped ({e.message.splitlines()[0]}); "
                               "restart every worker with the same command: they resume from the chief's last checkpoint") from None
    if trainer.is_chief(strategy):
        for r in results:
            run_dir = os.path.join(r["config"]["model_dir"], r["model"])
            logging.info("%s: metrics in %s", r["model"], storage.abspath(os.path.join(run_dir, experiment.METRICS)))
        _report(results)
    else:
        logging.info("not the chief: the chief evaluates and writes checkpoints and reports")
    strategy_lib.barrier(strategy)  # no worker leaves while another still needs it


def _check_inputs(manifest, runs: list[tuple[str, int | None, str]]) -> None:
    """Each run's frame input against what the data dir's clips hold."""
    from models import builder, trainer

    for recipe, fold, name in runs:
        frame_input = trainer.recipe_of(_config(recipe, fold), name).frame_input
        try:
            builder.check_frame_input(frame_input, manifest.clip.frames_per_step)
        except ValueError as e:
            given = "--frame_input" if FLAGS.frame_input else f"the {recipe} recipe's for {name}"
            raise cli.CommandError(f"{FLAGS.data_dir}: {e}, or choose another --frame_input than {given} "
                                   "(e.g. bg_diff or diff)") from None


def _finished_results(names: list[str]) -> list[dict]:
    """The metrics of every selected run that has finished; names those that have not."""
    from models import experiment

    results, missing = [], []
    for recipe, fold in [(r, f) for r in FLAGS.recipe for f in _fold_dirs(r)]:
        for name in names:
            run_dir = os.path.join(_model_dir(recipe, fold), name)
            result = experiment.load_result(run_dir)
            if result is None:
                missing.append(run_dir)
                continue
            trained = result["config"]["recipe"]  # as asked: an ablation (--without) is still its recipe's run
            if trained != recipe:
                raise cli.CommandError(f"{run_dir} was trained with recipe {result['recipe']}, not {recipe}; "
                                       f"pass --recipe={trained}")
            results.append(result)
    if missing:
        logging.warning("not in the report, no %s (not finished?): %s", experiment.METRICS, ", ".join(missing))
    if not results:
        raise cli.CommandError(f"{FLAGS.model_dir}: no finished run of {', '.join(names)} under recipe(s) {', '.join(FLAGS.recipe)}")
    return results


def _report(results: list[dict]) -> None:
    from models import report
    from pipeline import storage

    if any(r.get("fold") is not None for r in results):
        path = report.write_cross_validation(FLAGS.model_dir, results)
        print(storage.read_text(path))
        logging.info("cross-validation report: %s", storage.abspath(path))
    elif len(results) > 1 or FLAGS.report_only:
        path = report.write_comparison(FLAGS.model_dir, results)
        print(storage.read_text(path))
        logging.info("comparison report: %s", storage.abspath(path))

if __name__ == "__main__":
    cli.run(main, "train")
