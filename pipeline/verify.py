"""Check a prepared data dir against its manifest.

    python -m pipeline.verify OUT

Re-reads every shard: record CRCs (TFRecord framing), example counts, sha256, and that each
record parses with the schema and has a label in range. Prints each problem (which shard,
which check) and exits non-zero if there is any.
"""

from __future__ import annotations

import os

from absl import app

from pipeline import cli
from pipeline import manifest as manifest_lib

# TensorFlow loads inside the functions that read shards, so a wrong path is answered at once.


def _read_records(path: str, manifest: manifest_lib.Manifest) -> tuple[int, list[str]]:
    """(records read, problems) for one shard; CRC errors and bad records are problems."""
    import tensorflow as tf

    from pipeline import records

    problems = []
    count = 0
    num_classes = len(manifest.label_names)
    dataset = tf.data.TFRecordDataset(path).batch(64)
    try:
        for batch in dataset:
            count += int(batch.shape[0])
            try:
                labels = records.parse(batch, manifest.clip.stored_frames)[records.LABEL].numpy()
            except tf.errors.InvalidArgumentError as e:
                problems.append(f"{path}: record does not parse with the schema: {e.message.splitlines()[0]}")
                continue
            if labels.min() < 0 or labels.max() >= num_classes:
                problems.append(f"{path}: label out of range [0, {num_classes})")
    except tf.errors.DataLossError as e:
        problems.append(f"{path}: corrupt record after {count} good ones (CRC or truncation): {e.message.splitlines()[0]}")
    return count, problems


def verify_shard(data_dir: str, shard: manifest_lib.Shard, manifest: manifest_lib.Manifest) -> list[str]:
    """Problems with one shard, each naming the file and the check that failed."""
    import tensorflow as tf

    from pipeline.writing import shards

    path = os.path.join(data_dir, shard.file)
    if not tf.io.gfile.exists(path):
        return [f"{path}: missing"]
    problems = []
    sha = shards.file_sha256(path)
    if sha != shard.sha256:
        problems.append(f"{path}: sha256 {sha} differs from the manifest's {shard.sha256}")
    count, read_problems = _read_records(path, manifest)
    problems += read_problems
    if count != shard.num_examples:
        problems.append(f"{path}: {count} records, the manifest says {shard.num_examples}")
    return problems


def verify(data_dir: str, manifest: manifest_lib.Manifest | None = None) -> list[str]:
    """Every problem found in `data_dir`; empty when all shards match the manifest (read here
    unless given)."""
    import tensorflow as tf

    from pipeline.writing import shards

    if manifest is None:
        try:
            manifest = manifest_lib.load(data_dir)
        except manifest_lib.ManifestError as e:
            return [str(e)]
    problems = []
    listed = set()
    for info in manifest.splits.values():  # counts per split were checked when the manifest was read
        for shard in info.shards:
            listed.add(shard.file)
            problems += verify_shard(data_dir, shard, manifest)
    for name in sorted(tf.io.gfile.listdir(data_dir)):
        if shards.is_shard_file_name(name) and name not in listed:
            problems.append(f"{os.path.join(data_dir, name)}: shard file not in the manifest")
    return problems


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise app.UsageError("usage: python -m pipeline.verify DATA_DIR")
    data_dir = argv[1]
    try:
        manifest = manifest_lib.load(data_dir)
    except manifest_lib.ManifestError as e:
        raise cli.CommandError(str(e)) from None
    cli.tensorflow()
    problems = verify(data_dir, manifest)
    for p in problems:
        print(f"FAIL {p}")
    if problems:
        raise cli.CommandError(f"{len(problems)} problem(s) in {data_dir}")
    counts = ", ".join(f"{s} {i.num_examples}" for s, i in manifest.splits.items())
    print(f"OK {data_dir}: {counts} examples; every shard matches the manifest")


if __name__ == "__main__":
    cli.run(main, "verify")
