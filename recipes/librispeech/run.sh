#!/usr/bin/env bash
# LibriSpeech recipe: prepare -> train -> decode -> score, in resumable stages.
#
#   recipes/librispeech/run.sh [--stage N] [--stop-stage N] CORPUS_ROOT EXP_DIR
#
# CORPUS_ROOT holds LibriSpeech splits (train-clean-100, dev-clean, test-clean, ...) or a corpus in
# the same layout made by tools/make_tts_corpus.py (train-tts, dev-tts, test-tts). Set TRAIN_SPLITS,
# DEV_SPLIT, TEST_SPLITS to choose. Re-running a stage picks up where it stopped: training resumes
# from its last checkpoint, decoding and scoring are redone.
set -euo pipefail

stage=0
stop_stage=3
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $# -eq 2 ]] || { sed -n 2,10p "$0" >&2; exit 2; }
corpus=$1
exp=$2

TRAIN_SPLITS=${TRAIN_SPLITS:-train-clean-100}
DEV_SPLIT=${DEV_SPLIT:-dev-clean}
TEST_SPLITS=${TEST_SPLITS:-"dev-clean test-clean"}
TRAIN_ARGS=${TRAIN_ARGS:-"--max-frames 3000 --lr 1.5e-3 --warmup-steps 400 --ctc-only-steps 300 --epochs 40"}
BEAMS=${BEAMS:-"1 8"}
mkdir -p "$exp/data"

if [[ $stage -le 0 && $stop_stage -ge 0 ]]; then
  echo "stage 0: validate splits, write manifests and reference texts"
  for split in $TRAIN_SPLITS $DEV_SPLIT $TEST_SPLITS; do
    [[ -f $exp/data/$split.jsonl ]] || speech-s2s prepare "$corpus/$split" --out "$exp/data/$split.jsonl" \
      --text "$exp/data/$split.ref.txt" --files "$exp/data/$split.files"
  done
fi

if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
  echo "stage 1: train (resumes from $exp/train/checkpoint.pt if present)"
  train_manifests=()
  for split in $TRAIN_SPLITS; do train_manifests+=("$exp/data/$split.jsonl"); done
  # shellcheck disable=SC2086
  speech-s2s train --train "${train_manifests[@]}" --dev "$exp/data/$DEV_SPLIT.jsonl" --exp "$exp/train" --resume $TRAIN_ARGS
fi

if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then
  echo "stage 2: decode with the best dev model"
  for split in $TEST_SPLITS; do
    for beam in $BEAMS; do
      speech-s2s transcribe --file-list "$exp/data/$split.files" --model "$exp/train/best.safetensors" --beam "$beam" --overwrite \
        --output "$exp/recogs-$split-beam$beam.txt"
    done
  done
fi

if [[ $stage -le 3 && $stop_stage -ge 3 ]]; then
  echo "stage 3: score"
  for split in $TEST_SPLITS; do
    for beam in $BEAMS; do
      speech-s2s score --ref "$exp/data/$split.ref.txt" --hyp "$exp/recogs-$split-beam$beam.txt" --worst 20 > "$exp/errs-$split-beam$beam.txt"
      echo "$split beam $beam: $(head -n 1 "$exp/errs-$split-beam$beam.txt")" | tee -a "$exp/wer-summary.txt"
    done
  done
fi
