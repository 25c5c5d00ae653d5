#!/usr/bin/env bash
# Fetch into .whl/ (ignored by git) the wheels that tools/gpu_check.py's training and decoding paths import
# and that the GPU machine lacks. That machine has Python 3.12 with torch, torchaudio, numpy, safetensors,
# matplotlib, scipy, tqdm, click, onnx and onnxruntime, and no package index; these travel with the check:
#
#   soundfile (reads the FLACs), cffi (soundfile's binding; pycparser is its declared need), jiwer (dev WER
#   during training) and rapidfuzz (jiwer's edit distances).
#
# librosa (a fallback only for formats libsndfile cannot read) and silero-vad (transcribe's voice activity
# detection) are not imported by `train` or `decode`, so they stay behind.
#
#   tools/fetch_gpu_wheels.sh            # into .whl/ of the repository root; replaces what is there
#
# To refresh: change a pin below (keep one version per package: two stop the install there), rerun, and
# check what a new version needs with `unzip -p .whl/NAME-*.whl '*/METADATA' | grep ^Requires-Dist`.
# There they are installed with
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
set -euo pipefail

cd "$(dirname "$0")/.."
WHEELS=(soundfile==0.14.0 cffi==2.0.0 pycparser==3.0 jiwer==4.0.0 rapidfuzz==3.14.6)

rm -rf .whl
mkdir -p .whl
# manylinux tags pip matches exactly (one N each); pure-Python wheels (py3-none-any) match any of them.
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
ls -l .whl
du -cb .whl/*.whl | tail -1
