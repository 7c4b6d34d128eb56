"""Where videos come from besides the user's own tree: the NoctAct-HAR download, the built-in
generated clips, night copies of real videos. pipeline/download.py and pipeline/synthetic.py are
their commands."""
