"""prepare's side: plan the clips and shards, encode each video once, write the shards.

No TensorFlow at import time: the worker pool (`workers`) and Beam's workers (`beam_engine`) start
processes that should not pay for it, and the command checks its flags before TensorFlow loads.
`clip_cache` and `shards` import it (through pipeline.records) only to make or read a record or a
shard. tests/test_cli.py checks the rule.
"""
