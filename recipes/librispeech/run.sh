#!/usr/bin/env bash
# LibriSpeech recipe: verify -> manifests -> features -> train -> average -> LM -> decode -> score.
#
#   recipes/librispeech/run.sh [--config las_100h|las_960h|FILE.toml] [--stage N] [--stop-stage M] CORPUS_ROOT EXP_DIR
#
# The stages live in recipe.py (README.md beside it explains them, with disk and time per stage).
# Every stage is idempotent and resumes after a kill: rerun the same command.
set -euo pipefail
exec python3 "$(dirname "$0")/recipe.py" "$@"
