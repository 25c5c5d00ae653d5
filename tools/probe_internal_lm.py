"""Probe: internal language model estimation (ILME) in shallow fusion, measured, not shipped.

An attention decoder learns a language model of its training text along with the acoustics; when
the speech to recognise reads other text, that internal LM pulls the output back towards its
training text even while an external LM pulls away. ILME (Meng et al., 2021) estimates the internal
LM as the decoder with its attention context set to zero and subtracts it in the search:
score = attention + lm_weight * external LM - ilm_weight * internal LM (+ CTC as usual). The bundled
model's training text is over half the King James Bible, and its real-voice errors read like it
(PRESS -> PRAISE, ENTER -> UNTO, OR -> LORD), so this is the place to try it.

Writes `utt-id TEXT` lines as `speech-s2s transcribe --file-list` does (the same segmentation,
level correction and default decoding, with the bundled LM), for `speech-s2s score`. Example:
    python tools/probe_internal_lm.py --file-list $EXP/dev-asterisk.files --lm-weight 0.7 --ilm-weight 0.3 --output ilm.txt
"""

from __future__ import annotations

import argparse
import sys

import torch
from tqdm import tqdm

from speech_s2s.decoder import AttentionDecoder
from speech_s2s.inputs import expand_inputs
from speech_s2s.lm import load_lm
from speech_s2s.model import load_model
from speech_s2s.search import DecodingOptions, LanguageModel
from speech_s2s.transcribe import BUNDLED_LM, BUNDLED_MODEL, DEFAULT_BEAM, DEFAULT_LM_WEIGHT, FailedFile, Recognizer, TranscribeOptions


class InternalLM:
    """The decoder with its attention context zeroed, as a language model over its own tokens."""

    def __init__(self, decoder: AttentionDecoder):
        self.decoder = decoder
        self.context_size = decoder.cells[0].input_size - decoder.config.embedding_size

    def initial_state(self, batch_size: int):
        zeros = self.decoder.embedding.weight.new_zeros(batch_size, self.decoder.config.hidden_size)
        return [zeros] * len(self.decoder.cells), [zeros] * len(self.decoder.cells)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, state):
        x = self.decoder.embedding(tokens)
        no_context = x.new_zeros(x.shape[0], self.context_size)
        x = torch.cat([x, no_context], dim=1)
        hidden, cell = [], []
        for i, lstm in enumerate(self.decoder.cells):
            h, c = lstm(x, (state[0][i], state[1][i]))
            hidden.append(h)
            cell.append(c)
            x = h
        return torch.log_softmax(self.decoder.output(torch.cat([x, no_context], dim=1)), dim=-1), (hidden, cell)

    def select_state(self, state, index: torch.Tensor):
        return [h[index] for h in state[0]], [c[index] for c in state[1]]


class LessInternal:
    """External LM minus `ratio` x internal LM: the search multiplies the sum by its lm_weight."""

    def __init__(self, external: LanguageModel, internal: InternalLM, ratio: float):
        self.external, self.internal, self.ratio = external, internal, ratio

    def initial_state(self, batch_size: int):
        return self.external.initial_state(batch_size), self.internal.initial_state(batch_size)

    def step(self, tokens: torch.Tensor, state):
        external, external_state = self.external.step(tokens, state[0])
        internal, internal_state = self.internal.step(tokens, state[1])
        return external - self.ratio * internal, (external_state, internal_state)

    def select_state(self, state, index: torch.Tensor):
        return self.external.select_state(state[0], index), self.internal.select_state(state[1], index)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file-list", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--model", default=None, help="default: the bundled model")
    ap.add_argument("--lm", default=str(BUNDLED_LM), help="the external LM (default: the bundled one)")
    ap.add_argument("--lm-weight", type=float, default=DEFAULT_LM_WEIGHT)
    ap.add_argument("--ilm-weight", type=float, default=0.0, help="0: the default decoding")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.model or BUNDLED_MODEL)
    lm: LanguageModel = load_lm(args.lm, vocabulary=model.vocabulary)
    if args.ilm_weight > 0:
        lm = LessInternal(lm, InternalLM(model.decoder.eval()), args.ilm_weight / args.lm_weight)
    options = TranscribeOptions(decoding=DecodingOptions(beam_size=DEFAULT_BEAM, lm_weight=args.lm_weight))
    inputs, _ = expand_inputs([], args.file_list)
    with open(args.output, "w", encoding="utf-8") as out:
        for item in tqdm(Recognizer(model, options, lm).transcribe_files(inputs), total=len(inputs), unit="file"):
            if isinstance(item, FailedFile):
                print(f"probe_internal_lm: error: {item.error}", file=sys.stderr)
                continue
            out.write(f"{item.id} {item.text}".rstrip() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
