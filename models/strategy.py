"""Choosing a tf.distribute strategy, and the mixed-precision policy."""

from __future__ import annotations

import json
import socket

import keras
import tensorflow as tf

from models.kinds import PRECISIONS, STRATEGIES


def split_cpu(num_devices: int) -> None:
    """Make `num_devices` logical CPU devices (for MirroredStrategy without GPUs, as in tests).

    Must run before TensorFlow initializes its devices.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)


def make_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
    """mirrored: all local GPUs, else all logical CPUs; one_device: the first GPU or CPU;
    multi_worker: the cluster in TF_CONFIG; tpu: the TPU named by `tpu` ('' = local/auto)."""
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "one_device":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.OneDeviceStrategy(devices[0].name)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"strategy: unknown {name!r}; choose one of {', '.join(STRATEGIES)}")


def local_cluster_configs(num_workers: int) -> list[str]:
    """TF_CONFIG values (JSON), one per worker, of a cluster of `num_workers` processes on free
    127.0.0.1 ports: to try --strategy=multi_worker on one machine (tests, benchmarks)."""
    socks = [socket.socket() for _ in range(num_workers)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in socks]}
    for s in socks:
        s.close()
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(num_workers)]


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Wait until every worker of a multi-worker cluster gets here, so none exits while another
    still needs it (a collective sum of one number); no-op for other strategies."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        strategy.reduce(tf.distribute.ReduceOp.SUM, tf.constant(1.0), axis=None)


def set_precision(policy: str) -> None:
    """'none' (float32), 'mixed_float16' (GPU; the optimizer gets loss scaling) or 'mixed_bfloat16' (TPU)."""
    if policy not in PRECISIONS:
        raise ValueError(f"mixed_precision: unknown {policy!r}; choose one of {', '.join(PRECISIONS)}")
    keras.mixed_precision.set_dtype_policy("float32" if policy == "none" else policy)


def per_replica_batch(global_batch: int, strategy: tf.distribute.Strategy) -> int:
    replicas = strategy.num_replicas_in_sync
    if global_batch < 1 or global_batch % replicas:
        raise ValueError(f"batch_size: {global_batch} cannot be split evenly over {replicas} replicas")
    return global_batch // replicas
