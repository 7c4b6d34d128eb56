"""Download and extract NoctAct-HAR from Kaggle with the user's credentials.

    python -m pipeline.download --output_dir=DIR

Credentials: KAGGLE_USERNAME and KAGGLE_KEY, else ~/.kaggle/kaggle.json (or
$KAGGLE_CONFIG_DIR/kaggle.json). The work is in pipeline.sources.download; this is the command.
"""

from __future__ import annotations

from absl import flags

from pipeline import cli
from pipeline.sources import download


def main(argv: list[str]) -> None:
    FLAGS = flags.FLAGS
    try:
        state = download.download(FLAGS.output_dir, FLAGS.url, download.kaggle_credentials(), FLAGS.keep_archive)
    except download.DownloadError as e:
        raise cli.CommandError(str(e)) from None
    print(f"{FLAGS.output_dir}: {state.value}")


if __name__ == "__main__":  # flags only when run: prepare and synthetic define flags of the same names
    flags.DEFINE_string("output_dir", None, "Where to put the extracted class folders.", required=True)
    flags.DEFINE_string("url", download.KAGGLE_URL, "Archive URL (the Kaggle API's download address).")
    flags.DEFINE_bool("keep_archive", False, "Keep the zip after extraction.")
    cli.run(main, "download")
