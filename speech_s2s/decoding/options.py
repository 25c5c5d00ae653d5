"""How to decode: the options of every search, whose defaults are the product's defaults.

`DecodingOptions()` is what `speech-s2s transcribe`, `stream`'s finals and `speech_s2s.load()` do:
joint CTC/attention beam search of width 16 with the character LM and the word LM fused. The LM
weights apply only where a decoding has an LM (the builder sets them to 0 where it has none), and
greedy search (`beam_size` 1) uses none of the beam options. The command line's --help reads its
defaults from here, so this module imports no torch. Figures behind each choice: RESULTS.md and
docs/history/decoding.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from speech_s2s.model.encoder import ChunkConfig


@dataclass(frozen=True)
class DecodingOptions:
    # Beam 16: with the word LM in the search, 0.7 points fewer word errors on the real voice than
    # beam 12 and 1.7 fewer than 8, at 1.3x beam 8's time (still about 19x faster than real time on
    # one thread). 1 = greedy search: about a third of the time, more errors.
    beam_size: int = 16
    # Share of the CTC prefix score in the joint score. On single sentences 0.1 scored best, but on a
    # segment holding two sentences models of 2026-11-29 looped at 0.1 and 0.2 ("... not very kind
    # and thine kind and thine kind") where 0.3 followed the audio. With the word LM in the search,
    # 0.2 is better than 0.3 on all five dev sets, and the bundled model reads both sentences at
    # pauses of 0.3 to 3 s at 0.2 (tests/test_search.py holds it to that).
    ctc_weight: float = 0.2
    # Shallow fusion weight of the character LM: the better of 0.3 and 0.5 on every dev set.
    lm_weight: float = 0.5
    # Weight of the decoder's internal LM (decoder.InternalLanguageModel), subtracted beside an
    # external LM only: the decoder's prior leans to its train text, the LM's to wider English.
    # 0.15: 1.1 points fewer errors on the real voice, three of four synthetic dev sets better too.
    internal_lm_weight: float = 0.15
    # The word LM consulted at each word's end (word_fusion.py), and the share of the character LM's
    # weight that a finished word keeps beside it. At 0.5, dev-short was 2.1 points worse (95 %
    # interval +0.3 .. +4.6); at 0.4 no dev set is worse beyond noise and the real voice gains 0.9.
    word_lm_weight: float = 0.4
    char_lm_share: float = 0.5
    length_bonus: float = 0.0  # added per emitted token; counters the search's bias to short output
    length_normalization: bool = False  # rank finished hypotheses by score per token
    # End-of-sentence rules against LAS's well-known failures (looping, runaway and early-stopping
    # output): never emit more tokens than the CTC branch has frames (it could not align them), nor
    # much more than CTC's own greedy transcript is long, nor stop at much less than it (attention
    # trained on single sentences wants to stop at the first sentence's end); and stop at once on
    # input CTC hears as silence.
    max_tokens_per_ctc_frame: float = 1.0
    max_tokens_per_ctc_token: float = 1.5
    min_tokens_per_ctc_token: float = 0.7
    stop_on_ctc_silence: bool = True
    # Greedy output that stops short of the CTC lower bound, or runs into the length cap (a loop), is
    # decoded again by joint CTC/attention beam search of this width, which holds <eos> back and
    # follows the audio (forcing attention alone on only loops).
    fallback_beam_size: int = 4
    # Beam search computes CTC prefix scores only for this many tokens per hypothesis: <eos> and the
    # best others by attention (+ LM) score, as ESPnet's pre-beam. None = 2 x beam_size; the
    # vocabulary size (or more) scores every token.
    ctc_candidates: int | None = None
    chunk: ChunkConfig | None = None  # encode in latency-controlled chunks, as a live decoder would; None = full context

    @property
    def greedy(self) -> bool:
        return self.beam_size == 1

    def without_lm(self) -> DecodingOptions:
        """The same search with no LM weights: what a decoding without an LM runs (and records)."""
        return replace(self, lm_weight=0.0, internal_lm_weight=0.0)


# Greedy search: the cheapest decoding, used to score models during training and in the campaign.
GREEDY = DecodingOptions(beam_size=1)

# The fields a word LM adds to a decoding; `search` never reads them (the fused LM object carries them).
WORD_LM_FIELDS = ("word_lm_weight", "char_lm_share")


def with_overrides(options: DecodingOptions, **overrides) -> DecodingOptions:
    """`DecodingOptions` with some fields replaced, ignoring overrides given as None."""
    return replace(options, **{k: v for k, v in overrides.items() if v is not None})


def search_fields(options: DecodingOptions) -> dict:
    """The options the search itself reads, as a dict (what a resumable decoding's signature records)."""
    return {name: value for name, value in asdict(options).items() if name not in WORD_LM_FIELDS}
