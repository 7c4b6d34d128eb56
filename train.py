"""Train one of the six models, or all six, on prepared shards; evaluate on the test split.

    python train.py --data_dir=OUT --model=cnn_gru --model_dir=runs/x [flags]
    python train.py --data_dir=OUT --model=all --model_dir=runs/x   # + comparison.md
    python train.py --model=all --model_dir=runs/x --report_only    # comparison.md of finished runs

Flags only choose and override; the work is in `models/` and `pipeline/`.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Output dir of `python -m pipeline.prepare` (holds manifest.json).")
flags.DEFINE_string("model", "cnn_gru", "One of simple_rnn, lstm, gru, cnn_simple_rnn, cnn_lstm, cnn_gru, mobilenet_gru, or 'all'.")
flags.DEFINE_string("model_dir", "runs/train", "Checkpoints, logs, metrics and reports go to MODEL_DIR/<model>/.")
flags.DEFINE_integer("epochs", 50, "Epochs (the original's recipe: 50).")
flags.DEFINE_integer("batch_size", 64, "Global batch size, split over replicas.")
flags.DEFINE_list("recipe", ["improved"], "Training recipe(s): improved (motion input, feature normalization, schedule, "
                  "regularization, augmentation) or paper (the original's); several, comma-separated, train each model under "
                  "each into MODEL_DIR/<recipe>/ and compare them.")
flags.DEFINE_list("without", [], "Parts of the recipe to switch off (ablations): feature_norm, schedule, clipping, "
                  "weight_decay, label_smoothing, augment, motion.")
flags.DEFINE_float("learning_rate", None, "Learning rate (the peak, with a schedule); default: the recipe's (improved 3e-4, paper 1e-4).")
flags.DEFINE_enum("frame_input", None, ["rgb", "diff", "rgb+diff"], "What the model sees of each frame: pixels, the "
                  "difference to the previous frame (a motion cue), or both; computed inside the model; default: the recipe's.")
flags.DEFINE_string("backbone_weights", None, "mobilenet_gru: 'imagenet' (downloaded by Keras) or a local weights file of "
                    "the MobileNetV3-Small backbone; default: from scratch.")
flags.DEFINE_enum("strategy", "mirrored", ["mirrored", "one_device", "multi_worker", "tpu"], "Distribution strategy.")
flags.DEFINE_string("tpu", "", "TPU name or address, with --strategy=tpu.")
flags.DEFINE_enum("mixed_precision", "none", ["none", "mixed_float16", "mixed_bfloat16"], "Compute precision policy.")
flags.DEFINE_bool("jit_compile", False, "Compile train steps with XLA.")
flags.DEFINE_integer("seed", 0, "Seed for weights, shuffling and augmentation.")
flags.DEFINE_bool("deterministic", False, "Deterministic ops and input order (slower).")
flags.DEFINE_float("augment", None, "Strength of the training augmentation (flip, exposure jitter, small crop), 0 (off) "
                   "to 1 (full ranges); default: the recipe's.")
flags.DEFINE_integer("early_stopping", 0, "Stop after this many epochs without a better validation accuracy (0: off).")
flags.DEFINE_integer("steps_per_epoch", 0, "Training steps per epoch (0: one pass over the training split).")
flags.DEFINE_string("data_service", "", "grpc://HOST:PORT of a tf.data service dispatcher: its workers read and decode.")
flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many logical devices (MirroredStrategy without GPUs).")
flags.DEFINE_bool("summary_only", False, "Print each selected model's trainable parameter count and exit.")
flags.DEFINE_bool("report_only", False, "Train nothing: write MODEL_DIR's comparison report from the finished runs of the "
                  "selected models and recipes (their metrics.json; e.g. after one job per model) and exit.")


def _model_names() -> list[str]:
    from models import MODEL_NAMES

    if FLAGS.model == "all":
        return list(MODEL_NAMES)
    if FLAGS.model not in MODEL_NAMES:
        raise app.UsageError(f"--model: unknown {FLAGS.model!r}; choose one of {', '.join(MODEL_NAMES)} or all")
    return [FLAGS.model]


def _print_summary(names: list[str], manifest: dict | None) -> None:
    from models import build_model, trainable_params

    shape = dict(num_frames=10, height=240, width=320, num_classes=12)
    if manifest:
        shape = dict(num_frames=manifest["num_frames"], height=manifest["height"], width=manifest["width"], num_classes=len(manifest["label_names"]))
    from models import recipes

    recipe = recipes.get(FLAGS.recipe[0], FLAGS.without, frame_input=FLAGS.frame_input)
    for name in names:
        model = build_model(name, **shape, feature_norm=recipes.normalizes_features(recipe, name), frame_input=recipe.frame_input)
        print(f"{name}\t{trainable_params(model)}")


def _model_dir(recipe: str) -> str:
    """MODEL_DIR, or with several recipes MODEL_DIR/<recipe>/: where the recipe's runs go."""
    return FLAGS.model_dir if len(FLAGS.recipe) == 1 else os.path.join(FLAGS.model_dir, recipe)


def _config(recipe: str):
    """The training settings of one recipe."""
    from models import trainer

    return trainer.TrainConfig(
        data_dir=FLAGS.data_dir, model_dir=_model_dir(recipe), epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
        recipe=recipe, without=tuple(FLAGS.without), learning_rate=FLAGS.learning_rate, augment=FLAGS.augment,
        frame_input=FLAGS.frame_input, backbone_weights=FLAGS.backbone_weights, seed=FLAGS.seed,
        deterministic=FLAGS.deterministic, jit_compile=FLAGS.jit_compile, early_stopping=FLAGS.early_stopping,
        steps_per_epoch=FLAGS.steps_per_epoch, data_service=FLAGS.data_service,
    )


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    names = _model_names()
    import keras
    import tensorflow as tf

    from models import experiment, strategy as strategy_lib, trainer
    from pipeline import manifest as manifest_lib, storage

    if FLAGS.summary_only:
        _print_summary(names, manifest_lib.load(FLAGS.data_dir) if FLAGS.data_dir else None)
        return
    if FLAGS.report_only:
        _report(_finished_results(names))
        return
    if not FLAGS.data_dir:
        raise app.UsageError("--data_dir is required")
    try:
        strategy_lib.check_paths(FLAGS.strategy, data_dir=FLAGS.data_dir, model_dir=FLAGS.model_dir)
        manifest = manifest_lib.load(FLAGS.data_dir)
    except (manifest_lib.ManifestError, ValueError) as e:
        sys.exit(f"train: error: {e}")
    tf.get_logger().setLevel("WARNING")  # tf.distribute logs every all-reduce at INFO
    if FLAGS.logical_cpus:
        strategy_lib.split_cpu(FLAGS.logical_cpus)
    keras.utils.set_random_seed(FLAGS.seed)
    if FLAGS.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy_lib.set_precision(FLAGS.mixed_precision)
    strategy = strategy_lib.make_strategy(FLAGS.strategy, FLAGS.tpu)
    logging.info("%s with %d replica(s)", type(strategy).__name__, strategy.num_replicas_in_sync)
    try:
        results = []
        for recipe in FLAGS.recipe:
            config = _config(recipe)
            results += [experiment.train_and_evaluate(name, config, strategy, manifest) for name in names]
    except ValueError as e:
        sys.exit(f"train: error: {e}")
    except tf.errors.UnavailableError as e:  # MultiWorkerMirroredStrategy: a peer stopped
        sys.exit(f"train: error: a worker of the cluster stopped ({e.message.splitlines()[0]}); "
                 "restart every worker with the same command: they resume from the chief's last checkpoint")
    except tf.errors.InvalidArgumentError as e:
        if "corrupt shard" in e.message:
            sys.exit(f"train: error: {e.message.splitlines()[0]}")
        raise
    if trainer.is_chief(strategy):
        for r in results:
            run_dir = os.path.join(r["config"]["model_dir"], r["model"])
            logging.info("%s: metrics in %s", r["model"], storage.abspath(os.path.join(run_dir, experiment.METRICS)))
        _report(results)
    else:
        logging.info("not the chief: the chief evaluates and writes checkpoints and reports")
    strategy_lib.barrier(strategy)  # no worker leaves while another still needs it


def _finished_results(names: list[str]) -> list[dict]:
    """The metrics of every selected run that has finished; names those that have not."""
    from models import experiment

    results, missing = [], []
    for recipe in FLAGS.recipe:
        for name in names:
            run_dir = os.path.join(_model_dir(recipe), name)
            result = experiment.load_result(run_dir)
            if result is None:
                missing.append(run_dir)
                continue
            trained = result["config"]["recipe"]  # as asked: an ablation (--without) is still its recipe's run
            if trained != recipe:
                sys.exit(f"train: error: {run_dir} was trained with recipe {result['recipe']}, not {recipe}; "
                         f"pass --recipe={trained}")
            results.append(result)
    if missing:
        logging.warning("not in the report, no %s (not finished?): %s", experiment.METRICS, ", ".join(missing))
    if not results:
        sys.exit(f"train: error: {FLAGS.model_dir}: no finished run of {', '.join(names)} under recipe(s) {', '.join(FLAGS.recipe)}")
    return results


def _report(results: list[dict]) -> None:
    from models import report
    from pipeline import storage

    if len(results) > 1 or FLAGS.report_only:
        path = report.write_comparison(FLAGS.model_dir, results)
        print(storage.read_text(path))
        logging.info("comparison report: %s", storage.abspath(path))

if __name__ == "__main__":
    app.run(main)
