"""prepare's side: plan the clips and shards, encode each video once, write the shards.

No TensorFlow at import time: prepare's decoding worker processes import these modules (and Beam's
workers the engine's), and the command checks its flags before TensorFlow loads. `shards` imports
TensorFlow only to write or read a shard. tests/test_cli.py checks the rule.
"""
