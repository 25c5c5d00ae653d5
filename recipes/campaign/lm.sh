#!/usr/bin/env bash
# The character LM for shallow fusion, the word LM beam search consults at word ends, and the dev sweep
# that chooses the character LM's weight.
#
#   recipes/campaign/lm.sh [--stage N] [--stop-stage N]
#
# Stages: 0 text (every train sentence of the books, never Sense and Sensibility nor Northanger
# Abbey, plus WordNet's definitions and examples but the modern corpus's dev pool: Debian
# wordnet-base; the bundled LM's text predates that rule and holds dev-modern; plus Ding's example
# sentences, Debian trans-de-en, and the State of the Union addresses since 1950 when $SOTU holds
# them: tools/fetch_sotu.sh) -> 1 train the LM, and estimate the word trigram on the same text (seconds) ->
# 2 beam search with and without it on both dev sets (recipes/campaign/run.sh's dev manifests), one
# WER line per weight in $LM_DIR/fusion.md -> 3 bundle: copy both LMs over speech_s2s/assets/lm.safetensors
# and word_lm.safetensors (not run unless --stop-stage 3; do it when they beat the bundled ones on both dev sets).
# Resumable: each output is skipped once it exists, and the LM's training resumes exactly from its
# checkpoint (LM_MINUTES stops it early, to go on in a later run). LM_DIR (default $EXP/lm) keeps variants apart.
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=0
stop_stage=2  # 3 bundles the LM
while [[ $# -gt 0 ]]; do
  case $1 in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    *) sed -n 2,11p "$0" >&2; exit 2 ;;
  esac
done

EXP=${EXP:-exp/campaign}
THREADS=${THREADS:-1}
MODEL=${MODEL:-speech_s2s/assets/model.safetensors}
LM_ARGS=${LM_ARGS:-"--hidden 384 --layers 1 --steps 2000"}
WORD_LM_ARGS=${WORD_LM_ARGS:-"--order 3 --min-count 2"}
LM_EXCLUDE=${LM_EXCLUDE:-}   # text sources left out, e.g. kjv (make_tts_corpus.py --lm-exclude)
SOTU=${SOTU:-$HOME/.cache/speech_s2s/sotu}   # tools/fetch_sotu.sh's folder; left out when empty
BEAM=${BEAM:-8}
WEIGHTS=${WEIGHTS:-"0 0.3 0.5"}
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS
lm_dir=${LM_DIR:-$EXP/lm}
mkdir -p "$lm_dir"

if [[ $stage -le 0 && $stop_stage -ge 0 ]]; then
  sotu=()
  compgen -G "$SOTU/*.txt" > /dev/null && sotu=(--sotu "$SOTU")
  [[ -f $lm_dir/text.txt ]] || python tools/make_tts_corpus.py --lm-text "$lm_dir/text.txt" --seed 0 ${LM_EXCLUDE:+--lm-exclude "$LM_EXCLUDE"} "${sotu[@]}"
fi

if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
  # shellcheck disable=SC2086
  [[ -f $lm_dir/word_lm.safetensors ]] || speech-s2s train-word-lm --text "$lm_dir/text.txt" --out "$lm_dir/word_lm.safetensors" $WORD_LM_ARGS
  # a run that was killed (or that LM_MINUTES stopped) goes on from its checkpoint, exactly
  resume=()
  [[ -f $lm_dir/charlm.safetensors.checkpoint ]] && resume=(--resume)
  [[ -n ${LM_MINUTES:-} ]] && resume+=(--max-minutes "$LM_MINUTES")
  [[ -f $lm_dir/charlm.safetensors ]] || speech-s2s train-lm --text "$lm_dir/text.txt" --out "$lm_dir/charlm.safetensors" --threads "$THREADS" \
    "${resume[@]}" $LM_ARGS
  [[ -f $lm_dir/charlm.safetensors ]] || exit 0   # stopped early: the next run goes on
fi

if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then
  {
    echo "| LM weight | dev-tts WER % | dev-asterisk WER % |"
    echo "|---|---|---|"
    for weight in $WEIGHTS; do
      row="| $weight |"
      for dev in dev-tts dev-asterisk; do
        hyp=$lm_dir/$dev.beam$BEAM.lm$weight.txt
        lm=()
        [[ $weight != 0 ]] && lm=(--lm "$lm_dir/charlm.safetensors" --lm-weight "$weight")
        [[ -s $hyp ]] || speech-s2s transcribe --file-list "$EXP/$dev.files" --model "$MODEL" --beam "$BEAM" "${lm[@]}" \
          --threads "$THREADS" --output "$hyp" --overwrite
        row+=" $(speech-s2s score --ref "$EXP/$dev.ref.txt" --hyp "$hyp" --json | python -c 'import json,sys; print("%.2f" % (100 * json.load(sys.stdin)["wer"]))') |"
      done
      echo "$row"
    done
  } > "$lm_dir/fusion.md"
  cat "$lm_dir/fusion.md"
fi

if [[ $stage -le 3 && $stop_stage -ge 3 ]]; then
  install -m 644 "$lm_dir/charlm.safetensors" speech_s2s/assets/lm.safetensors  # readable by all, whatever umask wrote it
  install -m 644 "$lm_dir/word_lm.safetensors" speech_s2s/assets/word_lm.safetensors
  echo "bundled: commit speech_s2s/assets/lm.safetensors and word_lm.safetensors with $lm_dir/fusion.md's figures"
fi
