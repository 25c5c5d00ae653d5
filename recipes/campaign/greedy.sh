# Greedy scoring, sourced by the campaign's scripts (run.sh, ablation.sh, real_voice_ablation.sh): the
# comparison the campaign log has always made, and the cheapest. THREADS: decoding threads.

greedy_transcribe() {  # model, set prefix (PREFIX.files), transcript: written whole or not at all
  speech-s2s transcribe --file-list "$2.files" --model "$1" --beam 1 --threads "$THREADS" --no-punctuation \
    --output "$3.part" --overwrite
  mv "$3.part" "$3"
}

wer_of() {  # set prefix (PREFIX.ref.txt), transcript -> the word error rate as a fraction
  speech-s2s score --ref "$1.ref.txt" --hyp "$2" --json | python -c 'import json,sys; print(json.load(sys.stdin)["wer"])'
}
