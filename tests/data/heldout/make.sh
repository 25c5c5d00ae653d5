#!/bin/bash
# Makes tests/data/heldout/*.flac from the sentences below; run from the folder it writes into.
set -euo pipefail
say() {  # id engine voice text
  local id=$1 engine=$2 voice=$3 text=$4
  case $engine in
    espeak) espeak-ng -v "$voice" -w raw-$id.wav "$text" ;;
    flite) flite -voice "$voice" -t "$text" -o raw-$id.wav ;;
    festival) echo "$text" | text2wave -eval "($voice)" -o raw-$id.wav ;;
    rhvoice) echo "$text" | RHVoice-test -p "$voice" -o raw-$id.wav ;;
  esac
  sox -D raw-$id.wav -r 16000 -c 1 -b 16 -C 8 $id.flac gain -1 silence 1 0.02 0.1% reverse silence 1 0.02 0.1% reverse pad 0.2 0.2
  rm raw-$id.wav
}
say ho01 espeak en-us "please put the milk back in the fridge"
say ho02 flite slt "the bus to the station leaves at twenty past seven"
say ho03 espeak en+f3 "my sister bought three green apples today"
say ho04 flite rms "can you turn the music down a little"
say ho05 espeak en-us+m3 "we will paint the kitchen walls blue"
say ho06 flite awb "the dog slept under the table all afternoon"
say ho07 espeak en+klatt "i left my keys on the desk next to the window"
say ho08 festival voice_kal_diphone "he needs to call the dentist on friday"
say ho09 rhvoice clb "the train was late so we walked home"
say ho10 flite kal "there are forty chairs in the hall tonight"
