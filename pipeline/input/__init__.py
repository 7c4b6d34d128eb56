"""The training side: shards to tf.data input (`dataset.make_dataset`) and its augmentation."""
