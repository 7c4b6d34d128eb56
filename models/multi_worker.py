"""A training loop for MultiWorkerMirroredStrategy, in place of Keras' fit().

Keras 3.15's fit() fails under MultiWorkerMirroredStrategy (keras-team/keras#20585): it reduces
the first input batch and every scalar log with collective reductions that reject them. This loop
uses only public APIs: `strategy.run` of a step that computes the loss, lets the optimizer
all-reduce the gradients (Keras' optimizers sum them over replicas in a replica context), and
updates metrics; the same callbacks as fit() (checkpointing, TensorBoard, step logs) are driven
through a `keras.callbacks.CallbackList`.

Validation runs on each worker over the whole validation split (it is small), outside the
replicas; the workers then average their figures, so every worker makes the same early-stopping
decision even where kernels are not bit-reproducible.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


def _metrics() -> list[keras.metrics.Metric]:
    return [
        keras.metrics.Mean(name="loss"),
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        keras.metrics.SparseTopKCategoricalAccuracy(k=3, name="top3_accuracy"),
    ]


def _train_function(model: keras.Model, strategy: tf.distribute.Strategy, global_batch: int, metrics):
    loss_fn = model.loss.call  # the compiled loss (the recipe's), per example
    optimizer = model.optimizer

    def step(frames: tf.Tensor, labels: tf.Tensor) -> None:
        with tf.GradientTape() as tape:
            probs = model(frames, training=True)
            per_example = loss_fn(labels, probs)
            # Each replica's share of the global mean; the optimizer sums gradients over replicas.
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            scaled = optimizer.scale_loss(loss)  # loss scaling under mixed_float16
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        metrics[0].update_state(per_example)
        for m in metrics[1:]:
            m.update_state(labels, probs)

    @tf.function
    def train_step(iterator) -> None:
        frames, labels = next(iterator)
        strategy.run(step, args=(frames, labels))

    return train_step


def _validate_function(model: keras.Model, strategy: tf.distribute.Strategy, val_ds: tf.data.Dataset):
    """A function returning val_loss, val_accuracy, val_top3_accuracy over the whole validation
    split, averaged over workers."""
    loss_fn = model.loss.call

    @tf.function(input_signature=val_ds.element_spec)
    def batch_totals(frames: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """float64 [4]: loss sum, correct, top-3 correct, count."""
        probs = model(frames, training=False)
        top3 = tf.math.in_top_k(labels, probs, k=min(3, probs.shape[-1]))
        correct = tf.equal(tf.argmax(probs, -1, output_type=tf.int32), labels)
        sums = [tf.reduce_sum(loss_fn(labels, probs)), tf.reduce_sum(tf.cast(correct, tf.float32)),
                tf.reduce_sum(tf.cast(top3, tf.float32)), tf.cast(tf.size(labels), tf.float32)]
        return tf.cast(tf.stack(sums), tf.float64)

    def validate() -> dict[str, float]:
        totals = tf.zeros([4], tf.float64)
        for frames, labels in val_ds:
            totals += batch_totals(frames, labels)
        totals = strategy.reduce(tf.distribute.ReduceOp.MEAN, totals, axis=None)
        loss, correct, top3, count = (float(x) for x in totals.numpy())
        return {"val_loss": loss / count, "val_accuracy": correct / count, "val_top3_accuracy": top3 / count}

    return validate


def fit(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    train_ds: tf.distribute.DistributedDataset,
    val_ds: tf.data.Dataset,
    *,
    global_batch: int,
    epochs: int,
    initial_epoch: int,
    steps_per_epoch: int,
    callbacks: list[keras.callbacks.Callback],
) -> None:
    """Train a compiled `model` (created in `strategy.scope()`) like model.fit(train_ds, ...)."""
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
        metrics = _metrics()
    train_step = _train_function(model, strategy, global_batch, metrics)
    validate = _validate_function(model, strategy, val_ds)
    hooks = keras.callbacks.CallbackList(callbacks, model=model, epochs=epochs, steps=steps_per_epoch)
    iterator = iter(train_ds)
    model.stop_training = False
    hooks.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        for m in metrics:
            m.reset_state()
        hooks.on_epoch_begin(epoch)
        for step in range(steps_per_epoch):
            hooks.on_train_batch_begin(step)
            train_step(iterator)
            hooks.on_train_batch_end(step, {"loss": metrics[0].result()})
        logs: dict[str, Any] = {m.name: float(m.result()) for m in metrics}  # read across replicas and workers
        hooks.on_test_begin()
        logs.update(validate())
        hooks.on_test_end()
        hooks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    hooks.on_train_end()
