#!/usr/bin/env bash
# What the new voices and the acoustic augmentation each do, from short runs (the ablation in
# docs/history/training.md).
#
#   recipes/campaign/ablation.sh
#
# Fine-tuning runs of $STEPS updates from the bundled model, alike in everything (seed, learning rate,
# SpecAugment) but three things, named voices-augmentation[-full]:
#   voices:       "first" = the speakers of the first corpus's voices (espeak-ng, flite, festival's
#                 kal/ked/slt-hts, piper joe) or "all" = every train speaker of the campaign's corpus;
#   augmentation: "none" or "medium" (speed, VTLP, rooms, noise and hold music, channel, codecs);
#   context:      dynamic chunks as the campaign trains (default), or "-full": full context only, the
#                 control that tells what fine-tuning itself does to the model.
# Each run is scored greedy on both dev sets; the table goes to $ABLATION/ablation.md. Resumable: a run
# that has its scores is skipped, a killed one continues from its checkpoint.
# Needs the campaign's data and dev manifests (recipes/campaign/run.sh --stop-stage 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=recipes/campaign/greedy.sh
source recipes/campaign/greedy.sh

DATA=${DATA:-data}
EXP=${EXP:-exp/campaign}
ABLATION=${ABLATION:-$EXP/ablation}
STEPS=${STEPS:-400}
THREADS=${THREADS:-1}
INIT=${INIT:-speech_s2s/assets/model.safetensors}
MOH=${MOH:-/usr/share/asterisk/moh}
FIRST_VOICES=${FIRST_VOICES:-"espeak flite festival/voice_kal_diphone festival/voice_ked_diphone festival/voice_cmu_us_slt_arctic_hts piper"}
RUNS=${RUNS:-"first-none-full first-none first-medium all-none all-medium"}
COMMON_ARGS=${COMMON_ARGS:-"--lr 5e-4 --warmup-steps 300 --max-frames 3000 --checkpoint-every 100 --curriculum-epochs 0
  --dev-max-utterances 50"}
CHUNK_ARGS=${CHUNK_ARGS:-"--chunk-sizes 16 32 64 --chunk-right-contexts 0 16 --full-context-probability 0.4"}
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS
corpus=$DATA/corpus
mkdir -p "$ABLATION"

speech-s2s prepare "$corpus/train-tts" --out "$ABLATION/all.jsonl" --skip-invalid 2>/dev/null
# shellcheck disable=SC2086
python recipes/campaign/campaign.py subset "$ABLATION/all.jsonl" "$corpus/SPEAKERS.TXT" $FIRST_VOICES > "$ABLATION/first.jsonl"

augment_args=(--augment medium --rir-bank "$DATA/rirs.npz")
[[ -d $MOH ]] && augment_args+=(--noise-dir "$MOH")

for name in $RUNS; do
  IFS=- read -r voices augmentation context <<< "$name"
  run=$ABLATION/$name
  [[ -f $run/scores.json ]] && continue
  echo "ablation: $voices voices, augmentation $augmentation, ${context:-dynamic chunk} context"
  extra=()
  [[ $augmentation == medium ]] && extra=("${augment_args[@]}")
  # shellcheck disable=SC2206
  [[ $context == full ]] || extra+=($CHUNK_ARGS)
  # shellcheck disable=SC2086
  speech-s2s train --train "$ABLATION/$voices.jsonl" --dev "$EXP/dev-tts.jsonl" --exp "$run" --init "$INIT" --resume \
    --max-steps "$STEPS" --threads "$THREADS" $COMMON_ARGS "${extra[@]}"
  scores="{"
  for dev in dev-tts dev-asterisk; do
    greedy_transcribe "$run/last.safetensors" "$EXP/$dev" "$run/$dev.txt"
    scores+="\"$dev\": $(wer_of "$EXP/$dev" "$run/$dev.txt"),"
  done
  echo "${scores%,}}" > "$run/scores.json"
done

{
  echo "# Ablation: $STEPS updates from the bundled model, greedy dev WER %"
  echo
  echo "| voices | augmentation | context in training | train hours available | dev-tts | dev-asterisk |"
  echo "|---|---|---|---|---|---|"
  [[ -f $EXP/bundled-scores.json ]] && python -c 'import json,sys; s = json.load(open(sys.argv[1])); print("| (the bundled model, not fine-tuned) | | | | %.2f | %.2f |" % (100 * s["dev-tts"], 100 * s["dev-asterisk"]))' "$EXP/bundled-scores.json"
  for name in $RUNS; do
    IFS=- read -r voices augmentation context <<< "$name"
    [[ -f $ABLATION/$name/scores.json ]] || continue
    hours=$(python -c 'import json,sys; print("%.1f" % (sum(json.loads(l)["duration"] for l in open(sys.argv[1])) / 3600))' "$ABLATION/$voices.jsonl")
    python -c 'import json,sys; s = json.load(open(sys.argv[1])); print("| %s | %s | %s | %s | %.2f | %.2f |" % (*sys.argv[2:6], 100 * s["dev-tts"], 100 * s["dev-asterisk"]))' \
      "$ABLATION/$name/scores.json" "$voices" "$augmentation" "${context:-dynamic chunks}" "$hours"
  done
} > "$ABLATION/ablation.md"
cat "$ABLATION/ablation.md"
