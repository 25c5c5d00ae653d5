#!/usr/bin/env bash
# The real-voice levers of issue 30, each as a fine-tune of the bundled model at equal updates.
#
#   recipes/campaign/real_voice_ablation.sh            # every run in $RUNS, then the table
#   RUNS="control cmn" recipes/campaign/real_voice_ablation.sh
#
# Every run starts from the bundled model, trains $STEPS updates on the same manifest ($TRAIN, by
# default a campaign phase's mix) with the campaign's training options and seed, and differs in one
# lever only:
#   control     the campaign's own settings (SpecAugment 2 x 27 bins, 2 x 40 frames; no augmentation)
#   specaug     stronger SpecAugment: 3 frequency masks, 6 time masks, time warp of 5 frames
#   channel     a third of the utterances through a microphone/telephone channel: EQ, band limits,
#               8 kHz telephone with mu-law, MP3/Opus (augment preset "channel"; no rooms, noise, speed)
#   light       the whole acoustic augmentation at "light" strength (speed, VTLP, rooms, noise, channel)
#   cmn         utterance mean normalisation after the global one (FeatureConfig.utterance_mean)
#   wide        capacity: the encoder widened from 224 to $WIDE units per direction without changing
#               its function (tools/widen_model.py), trained for the same time, not the same updates:
#               $WIDE_STEPS updates, $STEPS over the measured cost ratio of an update
#               (tools/bench_train_step.py: 1.22 at 288 units, 3,000-frame batches, one thread)
# Each run is scored greedy on every dev set and on the held-out real voices (test-real), which are
# reported and never used to choose (MODEL_CARD.md, "Which sets choose what"). Resumable: a run with
# scores is skipped, a killed one continues from its checkpoint. The table goes to $ABLATION/table.md.
# Needs the campaign's dev manifests (run.sh --stop-stage 1) and the held-out set
# (tools/make_real_heldout.py --out $DATA/heldout).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=recipes/campaign/greedy.sh
source recipes/campaign/greedy.sh

DATA=${DATA:-data}
EXP=${EXP:-exp/campaign}
ABLATION=${ABLATION:-$EXP/real-voice-ablation}
PHASE=${PHASE:-$(cat "$EXP/current-phase")}
TRAIN=${TRAIN:-$PHASE/train.jsonl}
STEPS=${STEPS:-800}
THREADS=${THREADS:-1}
INIT=${INIT:-speech_s2s/assets/model.safetensors}
MOH=${MOH:-/usr/share/asterisk/moh}
HELDOUT=${HELDOUT:-$DATA/heldout/test-real}
RUNS=${RUNS:-"control specaug channel light cmn wide"}
WIDE=${WIDE:-288}
WIDE_STEPS=${WIDE_STEPS:-$(( STEPS * 100 / 122 ))}
# The campaign's training options (run.sh's TRAIN_ARGS), with fewer dev utterances per checkpoint.
COMMON_ARGS=${COMMON_ARGS:-"--lr 2e-4 --warmup-steps 300 --max-frames 3000 --epochs 100 --checkpoint-every 200
  --curriculum-epochs 0 --dev-max-utterances 50 --chunk-sizes 16 32 64 --chunk-right-contexts 0 16
  --full-context-probability 0.4"}
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS
mkdir -p "$ABLATION"

if [[ ! -f $ABLATION/test-real.files ]]; then
  speech-s2s prepare "$HELDOUT" --out "$ABLATION/test-real.jsonl" --text "$ABLATION/test-real.ref.txt" --files "$ABLATION/test-real.files"
fi
sets() {  # name and file-list prefix of every set scored
  for name in dev-tts-unread dev-asterisk dev-bench dev-kokoro dev-short dev-modern; do
    [[ -f $EXP/$name.files ]] && echo "$name $EXP/$name"
  done
  echo "test-real $ABLATION/test-real"
}

score() {  # model, output folder
  local scores="{" name prefix
  mkdir -p "$2"
  while read -r name prefix; do
    [[ -f $2/$name.txt ]] || greedy_transcribe "$1" "$prefix" "$2/$name.txt"
    scores+="\"$name\": $(wer_of "$prefix" "$2/$name.txt"),"
  done < <(sets)
  echo "${scores%,}}" > "$2/scores.json"
}

[[ -f $ABLATION/bundled/scores.json ]] || score "$INIT" "$ABLATION/bundled"

augment_args() {  # strength
  echo "--augment $1 --rir-bank $DATA/rirs.npz"
  [[ -d $MOH ]] && echo "--noise-dir $MOH"
  return 0
}

for name in $RUNS; do
  run=$ABLATION/$name
  [[ -f $run/scores.json ]] && continue
  init=$INIT steps=$STEPS
  case $name in
    control) extra="" ;;
    wide)
      extra="" init=$ABLATION/wide$WIDE-init.safetensors steps=$WIDE_STEPS
      [[ -f $init ]] || python tools/widen_model.py --model "$INIT" --encoder-hidden "$WIDE" --out "$init" ;;
    specaug) extra="--freq-masks 3 --time-masks 6 --time-warp 5" ;;
    channel) extra=$(augment_args channel) ;;
    light) extra=$(augment_args light) ;;
    cmn) extra="--utterance-mean-norm" ;;
    *) echo "unknown run $name" >&2; exit 2 ;;
  esac
  mkdir -p "$run"
  # the phase's feature cache, shared (hard links): features do not depend on the lever
  for cache in "$PHASE"/feats-*; do
    [[ -e $run/$(basename "$cache") || ! -d $cache ]] || cp -al "$cache" "$run/"
  done
  echo "ablation run $name: $extra"
  started=$(date +%s)
  # shellcheck disable=SC2086
  speech-s2s train --train "$TRAIN" --dev "$EXP/dev-tts.jsonl" --exp "$run" --init "$init" --resume \
    --max-steps "$steps" --threads "$THREADS" $COMMON_ARGS $extra
  echo $(( $(date +%s) - started )) >> "$run/train-seconds"
  speech-s2s export --model "$run/last.safetensors" --out "$run/export.safetensors" --half
  score "$run/export.safetensors" "$run"
done

{
  echo "# Real-voice levers: $STEPS updates from the bundled model each ($WIDE_STEPS for wide), greedy WER %"
  echo
  header="| run |" rule="|---|"
  while read -r name _; do header+=" $name |"; rule+="---|"; done < <(sets)
  echo "$header"
  echo "$rule"
  for name in bundled $RUNS; do
    [[ -f $ABLATION/$name/scores.json ]] || continue
    python -c 'import json,sys; s = json.load(open(sys.argv[1])); print("| %s | " % sys.argv[2] + " | ".join("%.2f" % (100 * s[k]) if k in s else "" for k in sys.argv[3:]) + " |")' \
      "$ABLATION/$name/scores.json" "$name" $(sets | cut -d' ' -f1)
  done
} > "$ABLATION/table.md"
cat "$ABLATION/table.md"
