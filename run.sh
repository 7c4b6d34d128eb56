#!/usr/bin/env bash
# One entry point for a fresh machine: it creates .venv, installs the project into it, then runs.
#   ./run.sh demo [OUT]   the main job on the built-in generated videos (default OUT: runs/demo)
#   ./run.sh test [ARGS]  the test suite (ARGS go to pytest)
set -euo pipefail
cd "$(dirname "$0")"
venv=.venv
python=${PYTHON:-python3}

ensure_venv() {
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    { echo "run.sh: Python 3.10 or newer is needed (found $("$python" --version 2>&1))" >&2; exit 1; }
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  # Reinstall only when the declared dependencies change.
  stamp="$venv/.installed-$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e ".[test,beam,litert,onnx]"
    rm -f "$venv"/.installed-* && touch "$stamp"
  fi
}

# "+ command" as it can be pasted into a shell: words with anything but safe characters in single quotes.
shown() {
  local word words=()
  for word in "$@"; do
    if [[ $word =~ ^[A-Za-z0-9_./=:,+@%-]+$ ]]; then words+=("$word"); else words+=("'${word//\'/\'\\\'\'}'"); fi
  done
  echo "+ ${words[*]}"
}

# The main job on built-in data: generate videos, prepare shards, verify them, train and compare
# the eight models, export the best, classify held-out videos with it, then a timeline of a long video made of
# several actions back to back. 14 min 43 s on a quiet 2-core machine.
demo() {
  out=$1
  py="$venv/bin/python"
  step() { echo; shown "$@"; "$@"; }
  step "$py" -m pipeline.synthetic --output_dir="$out/videos" --clips_per_class=32 --num_actors=8
  step "$py" -m pipeline.prepare --data_dir="$out/videos" --output_dir="$out/shards" \
    --height=60 --width=80 --group_regex='^(actor\d+)_' --candidates=1 --noflow
  step "$py" -m pipeline.verify "$out/shards"
  step "$py" train.py --data_dir="$out/shards" --model=all --model_dir="$out/models" \
    --epochs=20 --batch_size=16 --recipe=paper --learning_rate=1e-3
  echo; shown "$py" export.py --model_dir="$out/models" --model=best --export_dir="$out/exported"
  saved=$("$py" export.py --model_dir="$out/models" --model=best --export_dir="$out/exported" | tail -n 1)
  mapfile -t held_out < <("$py" -c 'import sys
from pipeline import manifest
for e in manifest.load(sys.argv[1]).split("test").examples[:4]: print(sys.argv[2] + "/" + e.source)' "$out/shards" "$out/videos")
  step "$py" -m pipeline.predict --model="$saved" "${held_out[@]}"
  step "$py" -m pipeline.synthetic --long_video="$out/long.mp4" --seed=7
  step "$py" -m pipeline.predict --model="$saved" --window=auto --plot="$out/timeline.png" \
    --output="$out/timeline.csv" "$out/long.mp4"
  echo
  echo "Comparison report: $out/models/comparison.md (curves: $out/models/comparison_curves.png)"
  echo "Exported SavedModel: $saved"
  echo "Timeline: $out/timeline.png (the actions really are where $out/long.mp4.segments.json says)"
}

export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
cmd=${1:-}
shift || true
case "$cmd" in
  demo)
    ensure_venv
    demo "${1:-runs/demo}"
    ;;
  test)
    ensure_venv
    exec "$venv/bin/python" -m pytest -n 2 "$@"
    ;;
  *)
    echo "usage: ./run.sh demo [OUT] | ./run.sh test [pytest args]" >&2
    exit 2
    ;;
esac
