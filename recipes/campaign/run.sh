#!/usr/bin/env bash
# The training campaign that builds the bundled model: one resumable command, restarted whenever work
# resumes, continuing from its last checkpoint.
#
#   recipes/campaign/run.sh [--stage N] [--stop-stage N]
#
# Stages: 0 data (synthetic corpus, the rehearsed legacy corpus of tool 2941059, real-voice dev set,
# room bank; Kokoro's corpora (the books, then modern sentences), the short utterances' and the modern
# sentences' go on in the background) -> 1 manifests and phase -> 2 train
# (--max-minutes $MINUTES, resumed) -> 3 average (kept as $phase/average-update-N; AT=N takes that one
# again, for a phase that has trained on since), interpolated with the anchor model -> 4 export ->
# 5 score every dev set, log the run in $EXP/campaign.md, WER per voice in
# $EXP/{export,bundled}-by-voice.DEV.txt, how sure each difference is in $EXP/export-vs-bundled.txt ->
# 6 promote: copy the export over the bundled model, only if it is better on the issue's two dev sets
# ($IMPROVE: the synthetic dev split's unread sentences and the real voice) and no other dev set is
# worse beyond noise (paired bootstrap from stage 5; not run unless --stop-stage 6).
#
# In the background, kind to other work on the machine (one thread, lowest priority):
#   nohup nice -n 19 recipes/campaign/run.sh > campaign.log 2>&1 &
# Folders (repository-relative by default): DATA (corpora), EXP (experiments). Everything is resumable:
# the corpus tool skips what exists, training resumes exactly within a phase (see campaign.py).
set -euo pipefail
# The body is one compound command, read whole before it runs: bash reads a plain script as it goes,
# so an edit committed while a long run trains would otherwise change the lines it has yet to read.
{
cd "$(dirname "$0")/../.."
# shellcheck source=recipes/campaign/greedy.sh
source recipes/campaign/greedy.sh

stage=0
stop_stage=5
while [[ $# -gt 0 ]]; do
  case $1 in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    *) sed -n 2,18p "$0" >&2; exit 2 ;;
  esac
done

DATA=${DATA:-data}
EXP=${EXP:-exp/campaign}
HOURS=${HOURS:-12}              # synthetic training audio to have (the corpus grows as a prefix)
JOBS=${JOBS:-2}                 # synthesis processes
MINUTES=${MINUTES:-150}         # training time in this run
THREADS=${THREADS:-1}
INIT=${INIT:-speech_s2s/assets/model.safetensors}   # the first phase fine-tunes the bundled model
MOH=${MOH:-/usr/share/asterisk/moh}                 # music on hold (Debian asterisk-moh-opsound-wav), mixed in as noise
# No curriculum (shortest batches first) in a phase's first epoch: phases fine-tune a trained model, and
# the curriculum ends the epoch on the longest utterances only, so the epoch-1 snapshot that stage 3
# averages is skewed. Phase 5 at update 1,300 (mid-curriculum): dev-tts-unread 35.88 %, 64 deletions;
# its epoch-1 snapshot (update 3,213, after the longest batches): 40.31 %, 185 deletions; 87 shuffled
# updates later (3,300): 36.14 %, 79 deletions.
TRAIN_ARGS=${TRAIN_ARGS:-"--lr 2e-4 --warmup-steps 300 --max-frames 3000 --epochs 100 --checkpoint-every 100
  --curriculum-epochs 0 --dev-max-utterances 150 --chunk-sizes 16 32 64 --chunk-right-contexts 0 16
  --full-context-probability 0.4"}
# Acoustic augmentation (light|medium|strong, or none). The ablation (docs/history/training.md) measured
# medium at 11 dev-tts points worse than none after 400 updates, and worse on the real voice too.
AUGMENT=${AUGMENT:-none}
AVERAGE=${AVERAGE:-3}           # epoch snapshots averaged for the export
# The export is the average interpolated with ANCHOR: each weight the weighted mean of the two
# (WiSE-FT). Phase 5's export (epoch 1 + update 5,525), greedy, dev-bench / dev-tts-unread /
# dev-asterisk %: alone 30.42 / 35.39 / 93.04; 0.3 of the anchor 29.65 / 35.61 / 94.99; 0.5 of it
# 28.80 / 36.41 / 97.95; the anchor 29.48 / 43.02 / 103.89. Chunked (32+16) on dev-bench: 31.1 % at
# 0.5, against 33.2 % alone and 35.1 % for the anchor.
# The anchor is the model bundled at commit 217d91e (ANCHOR_COMMIT, 2026-11-28), the one that learnt the
# benchmark's voice family; stage 3 takes it from git. Phases 5-9 were interpolated with the bundled
# model instead, which from phase 5 on is itself half the 217d91e model: phase 8 at 0.5 with the bundled
# model, greedy dev-bench 29.07 % (the bundled model 28.14), with the 217d91e model 28.03. Every phase's
# fine-tuned half now competes against the last one's with the same anchor.
ANCHOR_COMMIT=217d91e
anchor_from_git=$EXP/anchor-$ANCHOR_COMMIT.safetensors
ANCHOR=${ANCHOR:-$anchor_from_git}
# The anchor's share: 0.5 until commit 0311715 (2026-11-30). Phase 10 at update 1,200, greedy,
# dev-tts-unread / dev-asterisk / dev-bench / dev-kokoro / dev-short %: 0.5 33.57 / 93.80 / 27.73 /
# 42.17 / 61.15; 0.3 31.00 / 88.72 / 27.10 / 39.13 / 52.49; 0.2 30.33 / 86.74 / 27.45 / 39.42 / 49.34;
# 0.1 30.55 / 85.55 / 28.17 / 37.68 / 49.61 (the bundled model 33.30 / 95.22 / 27.84 / 42.61 / 62.20).
# Phases that rehearse the legacy corpus need less of the 217d91e model than phase 5 did.
# 0 since commit 538fe12 (2026-11-30). Phase 3 of the campaign folder begun on 2026-11-30 at update
# 5,118 (the bundled model at 0.2), greedy, dev-bench / dev-asterisk / dev-tts-unread %: 0.2 25.45 /
# 84.20 / 28.29; 0.1 25.70 / 82.45 / 27.18; the average alone 26.17 / 81.06 / 26.83. With the default
# decoding (beam 8, CTC 0.3, the bundled LM at 0.5), the average alone against 0.2: dev-bench 19.23 ->
# 19.45 (95 % interval -0.54 .. +0.99), dev-asterisk 74.63 -> 71.00 (-5.16 .. -2.12). The rehearsal
# keeps the benchmark's voices; the anchor only held the real voice back.
ANCHOR_WEIGHT=${ANCHOR_WEIGHT:-0}   # 0: the average alone
# Stage 6's rule: the dev sets a promotion must be better on (the issue's two: the synthetic dev split,
# by the name stage 1 gave it, and the real voice); every other one must not be worse beyond noise.
IMPROVE=${IMPROVE:-}
# The frozen benchmark (test-tts: the engines and corpus tool of commit 2941059, held-out sentences),
# which stage 0 remakes with that tool from git, and its dev split (dev-bench). Every engine synthesises
# the same audio at every build: piper's noise, which that tool drew from one unseeded onnxruntime
# session, is seeded per utterance by seeded_piper.py (unseeded, two builds on 2026-11-30, before commit
# c643189, gave the bundled model 32.09 and 32.07 % on test-tts, greedy, and its piper voices 42.86 /
# 39.93 and 30.94 / 33.44 %). The legacy corpus (REHEARSE), from the same tool, is made the old way:
# training data.
BENCHMARK=$DATA/evalcorpus
BENCH_DEV=${BENCH_DEV:-$BENCHMARK/dev-tts}
# What a phase trains on besides the corpus. Phase 3, on the corpus alone, fell behind the bundled model
# on every voice of the benchmark's dev split (dev-bench 36.0 vs 29.5 % at epoch 3); phase 4 gave the
# benchmark's four engines twice their share (WEIGHTS, engine=times) and did no better at its first
# epoch (36.3 %). The bundled model, then 217d91e, learnt those voices from the legacy corpus, so phases
# now rehearse that corpus itself (REHEARSE: its train split, 12 h, remade by stage 0 with the corpus
# tool of commit 2941059, LEGACY_TOOL), minus any sentence of a dev set. A changed mix starts a new phase
# from the last one's weights.
WEIGHTS=${WEIGHTS:-}
REHEARSE=${REHEARSE-$DATA/corpus-legacy/train-tts}   # REHEARSE= for none
# Kokoro-82M's neural voices (tools/fetch_kokoro.sh), the most human-like we have, as a corpus of their
# own that stage 0 synthesises in the background (one process, lowest priority, beside training;
# resumed every run) up to KOKORO_HOURS; its train split joins the mix, and a new phase begins each
# time it has grown by a quarter. KOKORO_HOURS=0 leaves it out.
# 12 since commit d0a73bb (2026-11-29; 8 before): a larger plan extends the smaller one (its utterances
# are a prefix), and at 8 h the split would have stopped at 6,851, short of the quarter's growth (7,091)
# that lets phase 9's 5,673 take in the rest.
# 5 since commit 42fe468 (2026-11-30; its plan a prefix of 12 h's; 4,209 utterances made by then): the
# real voice follows the text more than Kokoro's voices. 300 updates from phase 4's weights on Kokoro's
# train split alone took dev-asterisk from 80.96 to 85.71 % (on phase 4's mix: 80.77), while the modern
# sentences took it from 86.21 to 81.85 in phase 3. So Kokoro's voices go on reading WordNet's examples
# instead (KOKORO_MODERN: the same train speakers, seed 1; no dev split of its own, dev-modern's
# sentences never trained on), made after the books' plan by the same background process.
KOKORO_HOURS=${KOKORO_HOURS:-5}
KOKORO_DEV_UTTS=${KOKORO_DEV_UTTS:-100}    # its dev split (4 voices no train speaker uses) is a dev set: dev-kokoro
KOKORO_JOIN_UTTS=${KOKORO_JOIN_UTTS:-2000} # its train split joins the mix from this many utterances (about 2.2 h)
KOKORO=$DATA/corpus-kokoro
KOKORO_MODERN_HOURS=${KOKORO_MODERN_HOURS:-6}
KOKORO_MODERN_JOIN_UTTS=${KOKORO_MODERN_JOIN_UTTS:-2000}
KOKORO_MODERN=$DATA/corpus-kokoro-modern
# Then Kokoro's voices reading Ding's example sentences of everyday speech ("Can I settle up with you
# now?", Debian trans-de-en; tools/tts/text.py): the real voice's prompts are spoken instructions, and
# no corpus before said sentences like them. Train split only, joined like the others.
KOKORO_SPOKEN_HOURS=${KOKORO_SPOKEN_HOURS:-6}
KOKORO_SPOKEN_JOIN_UTTS=${KOKORO_SPOKEN_JOIN_UTTS:-2000}
KOKORO_SPOKEN=$DATA/corpus-kokoro-spoken
# Short utterances (one or two words, numbers): the corpus's sentences have 3-22 words, and a model that
# has heard only sentences spells on past a lone word (dev-asterisk's 232 one-word prompts: 150 % WER,
# the bundled model, greedy). Made in the background like Kokoro's corpus, by every engine (Kokoro's
# speakers those of its own corpus: seed 1), joined once SHORT_JOIN_UTTS of its train split exist; its
# dev split is dev-short.
SHORT_HOURS=${SHORT_HOURS:-0.75}          # planned at sentence speed: about 3,700 utterances, 1.2 h of audio
SHORT_DEV_UTTS=${SHORT_DEV_UTTS:-200}
SHORT_JOIN_UTTS=${SHORT_JOIN_UTTS:-3500}
SHORT=$DATA/corpus-short
# Modern English: WordNet's usage examples ("give me a hand with the chores"), read by the corpus's own
# speakers (seed 0, so no dev-tts voice is trained on) and made in the background like the two above.
# The books' train text is over half the King James Bible, and the decoder learns its English: "lord"
# is in 34 of the bundled model's real-voice transcripts (default decoding) and in no reference; an
# LM without the Bible was better on every sentence dev set (docs/history/decoding.md). Its dev split
# is dev-modern.
# The first 6 h joined phase 3; 1,400 updates later, greedy against the phase's start: dev-modern 60.89 ->
# 56.01 %, dev-asterisk 86.21 -> 81.85 % (better in 100 % of paired resamples). Hence 12 h.
MODERN_HOURS=${MODERN_HOURS:-12}            # planned at sentence speed: 21,737 utterances (10,875 at 6 h, the first plan, a prefix)
MODERN_DEV_UTTS=${MODERN_DEV_UTTS:-200}
MODERN_JOIN_UTTS=${MODERN_JOIN_UTTS:-10000}
MODERN=$DATA/corpus-modern
# The Bible's share of the acoustic mix. Its verses are 34 % of phase 7's hours (17.3 of 51.2 h: over
# half of each books' corpus), no dev or test set reads it, and the decoder learns its words as much as the
# voices: the bundled model's default decoding of dev-asterisk writes "praise" for "press" 48 times
# (greedy: 44), "lord", "unto", "moses", and 196 of its 1,912 word errors are words five times more
# frequent in the Bible than in the modern sentences. From phase 8 on, a phase keeps this share of the
# utterances that read a verse (the same ones in every phase); the books' and modern sentences stay whole.
KJV_SHARE=${KJV_SHARE:-0.25}   # 1: all of them
LEGACY_TOOL=2941059             # the commit whose tools/make_tts_corpus.py made the legacy corpus and the benchmark
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS
corpus=$DATA/corpus
mkdir -p "$EXP"

synthesise_in_background() {  # corpus folder, log, make_tts_corpus.py's other arguments [-- the same for a corpus to make next ...]
  local first=$1 commands="" spec
  while [[ $# -gt 0 ]]; do
    spec=()
    while [[ $# -gt 0 && $1 != -- ]]; do spec+=("$1"); shift; done
    [[ $# -gt 0 ]] && shift
    mkdir -p "${spec[0]}"
    commands+="python tools/make_tts_corpus.py --out $(printf %q "${spec[0]}") --jobs 1 $(printf '%q ' "${spec[@]:2}")>> $(printf %q "${spec[1]}") 2>&1; "
    echo "synthesis of ${spec[0]} in the background, unless one already holds $first's lock: ${spec[1]}"
  done
  # one process makes them in turn; flock: a later run, while that process lives, must not start a second
  nohup flock -n "$first/.synthesis.lock" nice -n 19 bash -c "$commands" > /dev/null 2>&1 &
}

if [[ $stage -le 0 && $stop_stage -ge 0 ]]; then
  echo "stage 0: data"
  python tools/make_tts_corpus.py --out "$corpus" --seed 0 --jobs "$JOBS" --train-hours "$HOURS" --dev-utts 300 --test-utts 400
  python tools/make_asterisk_devset.py --out "$DATA/devsets"
  [[ -f $DATA/rirs.npz ]] || python tools/make_rir_bank.py --out "$DATA/rirs.npz" --count 200 --seed 0
  # the tool as it was, from git: the frozen benchmark, and the legacy corpus to rehearse
  legacy=$(mktemp -d)
  git archive "$LEGACY_TOOL" tools/make_tts_corpus.py speech_s2s/__init__.py speech_s2s/normalize.py | tar -x -C "$legacy"
  python recipes/campaign/seeded_piper.py "$legacy/tools/make_tts_corpus.py" --out "$BENCHMARK" --seed 0 --jobs "$JOBS" \
    --train-hours 0 --max-train-utts 0 --dev-utts 300 --test-utts 400
  if [[ -n $REHEARSE ]]; then
    python "$legacy/tools/make_tts_corpus.py" --out "$(dirname "$REHEARSE")" --seed 0 --jobs "$JOBS" --train-hours 12 --dev-utts 300 --test-utts 400
  fi
  rm -rf "$legacy"
  kokoro=0
  [[ $KOKORO_HOURS != 0 ]] && tools/fetch_kokoro.sh > /dev/null && kokoro=1
  if [[ $kokoro == 1 ]]; then
    # one Kokoro process at a time (the slowest voice, and one core is all it gets): the books' plan,
    # then the modern sentences', then Ding's; a plan already complete is checked in seconds
    kokoro_modern=() kokoro_spoken=()
    [[ $KOKORO_MODERN_HOURS != 0 ]] && kokoro_modern=(-- "$KOKORO_MODERN" "$EXP/kokoro-modern-synthesis.log" --modern \
      --engines kokoro --seed 1 --train-hours "$KOKORO_MODERN_HOURS" --dev-utts 0)
    [[ $KOKORO_SPOKEN_HOURS != 0 ]] && kokoro_spoken=(-- "$KOKORO_SPOKEN" "$EXP/kokoro-spoken-synthesis.log" --spoken \
      --engines kokoro --seed 1 --train-hours "$KOKORO_SPOKEN_HOURS")
    synthesise_in_background "$KOKORO" "$EXP/kokoro-synthesis.log" --engines kokoro --seed 1 \
      --train-hours "$KOKORO_HOURS" --dev-utts "$KOKORO_DEV_UTTS" --test-utts 0 "${kokoro_modern[@]}" "${kokoro_spoken[@]}"
  fi
  if [[ $SHORT_HOURS != 0 ]]; then
    engines=rhvoice,festival,piper,mbrola,flite,pico,espeak
    [[ $kokoro == 1 ]] && engines+=,kokoro
    synthesise_in_background "$SHORT" "$EXP/short-synthesis.log" --short --engines "$engines" --seed 1 \
      --train-hours "$SHORT_HOURS" --dev-utts "$SHORT_DEV_UTTS"
  fi
  if [[ $MODERN_HOURS != 0 ]]; then
    synthesise_in_background "$MODERN" "$EXP/modern-synthesis.log" --modern --seed 0 \
      --train-hours "$MODERN_HOURS" --dev-utts "$MODERN_DEV_UTTS"
  fi
fi

prepare_once() {  # a split folder, its dev set's name: the manifest, references and file list in $EXP, once
  [[ -f $EXP/$2.jsonl ]] || speech-s2s prepare "$1" --out "$EXP/$2.jsonl" --text "$EXP/$2.ref.txt" --files "$EXP/$2.files"
}

dev_split_made() {  # a corpus made in the background, its hours (0: not made), its dev split's size: all there?
  [[ $2 != 0 && $(find "$1/dev-tts" -name '*.flac' 2>/dev/null | wc -l) -ge $3 ]]
}

join_from() {  # a corpus made in the background, its hours (0: not made), the utterances its train split joins at
  if [[ $2 != 0 && $(python recipes/campaign/campaign.py transcribed "$1/train-tts") -ge $3 ]]; then
    options+=(--rehearse "$1/train-tts")
  fi
}

if [[ $stage -le 1 && $stop_stage -ge 1 ]]; then
  echo "stage 1: dev manifests; the phase to train in"
  prepare_once "$corpus/dev-tts" dev-tts
  prepare_once "$DATA/devsets/dev-asterisk" dev-asterisk
  # The frozen benchmark's own dev split (its voices are test-tts's engines): a phase that forgets
  # them must not be promoted, as phase 3 would have been on the two sets above alone.
  [[ -d $BENCH_DEV ]] && prepare_once "$BENCH_DEV" dev-bench
  # The bundled model read 94 of dev-tts's 300 sentences in training (the legacy corpus, made by the
  # tool of commit 2941059, had Northanger Abbey, now dev-tts's book), which flatters it there;
  # promotion compares on the rest.
  if [[ -n $REHEARSE && -d $REHEARSE && ! -f $EXP/dev-tts-unread.files ]]; then
    python recipes/campaign/campaign.py unread "$EXP/dev-tts" "$REHEARSE" "$EXP/dev-tts-unread"
  fi
  # Kokoro's dev split once all of it exists (the synthesis makes it first): unseen neural voices, the
  # nearest to real speech we synthesise; scored, like dev-tts, on the sentences the bundled model never read
  kokoro_dev=$(find "$KOKORO/dev-tts" -name '*.flac' 2>/dev/null | wc -l)
  if [[ -n $REHEARSE && -d $REHEARSE && ! -f $EXP/dev-kokoro.files && $kokoro_dev -ge $KOKORO_DEV_UTTS ]]; then
    speech-s2s prepare "$KOKORO/dev-tts" --out "$EXP/dev-kokoro-all.jsonl" --text "$EXP/dev-kokoro-all.ref.txt" --files "$EXP/dev-kokoro-all.files"
    python recipes/campaign/campaign.py unread "$EXP/dev-kokoro-all" "$REHEARSE" "$EXP/dev-kokoro"
  fi
  dev_split_made "$SHORT" "$SHORT_HOURS" "$SHORT_DEV_UTTS" && prepare_once "$SHORT/dev-tts" dev-short
  dev_split_made "$MODERN" "$MODERN_HOURS" "$MODERN_DEV_UTTS" && prepare_once "$MODERN/dev-tts" dev-modern
  options=()
  [[ ${RESTART:-0} == 1 ]] && options=(--restart)  # once, by hand: a new phase from $INIT
  for weight in $WEIGHTS; do options+=(--weight "$weight"); done
  [[ -n $REHEARSE ]] && options+=(--rehearse "$REHEARSE")
  # from KOKORO_JOIN_UTTS utterances on (then a phase per quarter of growth: not one per run from the start)
  join_from "$KOKORO" "$KOKORO_HOURS" "$KOKORO_JOIN_UTTS"
  join_from "$KOKORO_MODERN" "$KOKORO_MODERN_HOURS" "$KOKORO_MODERN_JOIN_UTTS"
  join_from "$KOKORO_SPOKEN" "$KOKORO_SPOKEN_HOURS" "$KOKORO_SPOKEN_JOIN_UTTS"
  join_from "$SHORT" "$SHORT_HOURS" "$SHORT_JOIN_UTTS"
  join_from "$MODERN" "$MODERN_HOURS" "$MODERN_JOIN_UTTS"
  for name in dev-tts dev-asterisk dev-bench dev-kokoro-all dev-short dev-modern; do [[ -f $EXP/$name.ref.txt ]] && options+=(--held-out-text "$EXP/$name.ref.txt"); done
  if [[ $KJV_SHARE != 1 ]]; then   # the corpus tool's Bible sentences, as its LM text of that source alone
    if [[ ! -f $EXP/kjv-sentences.txt ]]; then
      others=$(python -c "from tools.tts.text import LM_TEXT_SOURCES as s; print(','.join(x for x in s if x != 'kjv'))")
      python tools/make_tts_corpus.py --lm-text "$EXP/kjv-sentences.txt" --lm-exclude "$others"
    fi
    options+=(--thin "$EXP/kjv-sentences.txt=$KJV_SHARE")
  fi
  python recipes/campaign/campaign.py phase "$EXP" "$corpus/train-tts" "$INIT" "${options[@]}" > "$EXP/current-phase.new"
  mv "$EXP/current-phase.new" "$EXP/current-phase"
fi
phase=${PHASE:-$(cat "$EXP/current-phase")}   # PHASE: stages 3-6 on an earlier phase, e.g. one a new phase replaced

if [[ $stage -le 2 && $stop_stage -ge 2 ]]; then
  echo "stage 2: train $phase for $MINUTES minutes"
  steps_before=$(python recipes/campaign/campaign.py steps "$phase")
  echo "$steps_before" > "$phase/steps-before-run"
  augment=()
  if [[ $AUGMENT != none ]]; then
    augment=(--augment "$AUGMENT" --rir-bank "$DATA/rirs.npz")
    [[ -d $MOH ]] && augment+=(--noise-dir "$MOH")
  fi
  started=$(date +%s)
  # shellcheck disable=SC2086
  speech-s2s train --train "$phase/train.jsonl" --dev "$EXP/dev-tts.jsonl" --exp "$phase" --init "$(cat "$phase/init.txt")" --resume \
    "${augment[@]}" --max-minutes "$MINUTES" --threads "$THREADS" $TRAIN_ARGS
  echo $(( ($(date +%s) - started) / 60 )) > "$phase/minutes-of-run"
fi

if [[ $stage -le 3 && $stop_stage -ge 3 ]]; then
  echo "stage 3: average the last $AVERAGE snapshots (epoch ends, and the run's last weights if newer)"
  mapfile -t snapshots < <(ls "$phase"/epoch*.safetensors 2>/dev/null | tail -n "$AVERAGE")
  if [[ ${#snapshots[@]} -gt 0 && $phase/last.safetensors -nt ${snapshots[-1]} ]]; then
    snapshots=("${snapshots[@]:$(( ${#snapshots[@]} >= AVERAGE ? 1 : 0 ))}" "$phase/last.safetensors")
  fi
  if [[ -n ${AT:-} ]]; then   # AT=N: the average this stage made at update N (a phase goes on training after a promotion)
    cp "$phase/average-update-$AT.safetensors" "$phase/average.safetensors"
  elif [[ ${#snapshots[@]} -gt 0 ]]; then
    speech-s2s average "${snapshots[@]}" --out "$phase/average.safetensors"
  else
    cp "$phase/last.safetensors" "$phase/average.safetensors"   # no epoch finished yet
  fi
  [[ -n ${AT:-} ]] || cp "$phase/average.safetensors" "$phase/average-update-$(python recipes/campaign/campaign.py steps "$phase").safetensors"
  if [[ ! -f $ANCHOR && $ANCHOR == "$anchor_from_git" ]]; then
    git show "$ANCHOR_COMMIT:speech_s2s/assets/model.safetensors" > "$ANCHOR.part" \
      || { echo "stage 3: the anchor is commit $ANCHOR_COMMIT's bundled model: needs the git history (or ANCHOR=file)" >&2; exit 1; }
    mv "$ANCHOR.part" "$ANCHOR"
  fi
  echo "stage 3: interpolate with $ANCHOR (its weight $ANCHOR_WEIGHT)"
  speech-s2s average "$ANCHOR" "$phase/average.safetensors" --weights "$ANCHOR_WEIGHT" \
    "$(python -c "print(1 - $ANCHOR_WEIGHT)")" --out "$phase/interpolated.safetensors"
fi

if [[ $stage -le 4 && $stop_stage -ge 4 ]]; then
  echo "stage 4: export (float16)"
  speech-s2s export --model "$phase/interpolated.safetensors" --out "$EXP/export.safetensors" --half
fi

dev_sets() {  # the dev sets stage 1 prepared (dev-tts: only the sentences the bundled model never read, once known)
  for name in dev-tts dev-asterisk dev-bench dev-kokoro dev-short dev-modern; do
    [[ $name == dev-tts && -f $EXP/dev-tts-unread.files ]] && name=dev-tts-unread
    [[ -f $EXP/$name.files ]] && echo "$name"
  done
}

score_model() {  # model, output json: greedy WER on every dev set (greedy.sh)
  local scores="{"
  for name in $(dev_sets); do
    greedy_transcribe "$1" "$EXP/$name" "$2.$name.txt"
    scores+="\"$name\": $(wer_of "$EXP/$name" "$2.$name.txt"),"
  done
  echo "${scores%,}}" > "$2"
}

if [[ $stage -le 5 && $stop_stage -ge 5 ]]; then
  echo "stage 5: score the dev sets; log the run"
  # the bundled model's scores, again whenever a dev set is new to them or the decoding code has
  # changed since (the package's files but the models: the level correction of commit 0f11f22 moved
  # dev-short by a point), so that both models are always scored by the same program
  code=$(git ls-tree -r HEAD speech_s2s | grep -v "speech_s2s/assets/" | git hash-object --stdin 2>/dev/null || echo unknown)
  for name in $(dev_sets); do
    if ! grep -qs "\"$name\"" "$EXP/bundled-scores.json" || [[ $(cat "$EXP/bundled-scores.code" 2>/dev/null) != "$code" ]]; then
      score_model speech_s2s/assets/model.safetensors "$EXP/bundled-scores.json"
      echo "$code" > "$EXP/bundled-scores.code"
      break
    fi
  done
  score_model "$EXP/export.safetensors" "$EXP/export-scores.json"
  # WER per voice of the synthetic dev sets beside the bundled model's: which voices a phase forgets
  for name in $(dev_sets); do
    case $name in
      dev-bench) ref=$BENCH_DEV ;;           # a split: its voices are described
      dev-asterisk) continue ;;             # one speaker
      *) ref=$EXP/$name.ref.txt ;;
    esac
    for who in export bundled; do
      speech-s2s score --ref "$ref" --hyp "$EXP/$who-scores.json.$name.txt" --by-speaker > "$EXP/$who-by-voice.$name.txt" || true
    done
  done
  # how sure each difference is: a dev set of a few hundred utterances moves by tenths of a point from
  # which utterances it holds (paired bootstrap); as JSON too, where stage 6 reads each guard set's interval
  for name in $(dev_sets); do
    rm -f "$EXP/export-vs-bundled.$name.json"
    speech-s2s score --ref "$EXP/$name.ref.txt" --hyp "$EXP/export-scores.json.$name.txt" --worst 0 \
      --compare "$EXP/bundled-scores.json.$name.txt" --json-out "$EXP/export-vs-bundled.$name.json" \
      | tail -n 1 | sed "s|^|$name |; s|$EXP/||"
  done > "$EXP/export-vs-bundled.txt" || true
  cat "$EXP/export-vs-bundled.txt"
  python recipes/campaign/campaign.py log "$EXP" "$phase" "$(cat "$phase/steps-before-run" 2>/dev/null || echo 0)" \
    "$(cat "$phase/minutes-of-run" 2>/dev/null || echo 0)" "$EXP/export-scores.json" "$EXP/bundled-scores.json"
  python recipes/campaign/campaign.py curve "$EXP" "$EXP/campaign-curve.png"   # every phase's in-training dev WER
fi

if [[ $stage -le 6 && $stop_stage -ge 6 ]]; then
  improve=${IMPROVE:-"$(dev_sets | grep '^dev-tts' || true) dev-asterisk"}
  echo "stage 6: promote the export if it is better on $improve and no other dev set is worse beyond noise"
  # shellcheck disable=SC2086  # the list splits into names
  if python recipes/campaign/campaign.py promote "$EXP/export-scores.json" "$EXP/bundled-scores.json" \
      --improve $improve --comparisons "$EXP/export-vs-bundled"; then
    cp "$EXP/export.safetensors" speech_s2s/assets/model.safetensors
    # the next comparison is against the new bundled model: its scores and its transcripts
    cp "$EXP/export-scores.json" "$EXP/bundled-scores.json"
    for name in $(dev_sets); do cp "$EXP/export-scores.json.$name.txt" "$EXP/bundled-scores.json.$name.txt"; done
    echo "promoted: commit speech_s2s/assets/model.safetensors with $EXP/campaign.md's row"
  fi
fi
exit
}
