"""`speech-s2s decode`: whole utterances of a manifest, for scoring; resumable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speech_s2s.cli.options import (
    DEFAULTS,
    add_float_search,
    apply_threads,
    decoding_from_args,
    fail,
    positive,
)


def add_decode(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "decode", help="decode a manifest's utterances whole, for scoring (resumable)",
        description="Decode each utterance of MANIFEST whole (no voice-activity cutting, as published results are scored) into OUTPUT "
        "as 'utt-id text' lines sorted by id. Progress goes to OUTPUT.partial; rerun after a kill, it continues where it stopped "
        "(if model, LM and options are the same). OUTPUT appears only when complete.",
    )
    p.add_argument("manifest", help="manifest (.jsonl) from `speech-s2s prepare`")
    p.add_argument("--model", required=True, help="model file (.safetensors)")
    p.add_argument("--output", required=True, help="hypothesis file to write")
    p.add_argument("--beam", type=positive, default=1, help="beam size; 1 = greedy (default)")
    add_float_search(p)
    p.add_argument("--ctc-weight", type=float, default=None, help=f"CTC share of the joint beam score (default {DEFAULTS.ctc_weight:g}; beam search only)")
    p.add_argument("--lm", help="character LM (.safetensors) for shallow fusion (beam search only)")
    p.add_argument("--lm-weight", type=float, default=None, help=f"LM weight for shallow fusion (default {DEFAULTS.lm_weight:g} with --lm)")
    p.add_argument("--internal-lm-weight", type=float, default=None,
                   help=f"weight of the decoder's own LM, subtracted beside the LM (default {DEFAULTS.internal_lm_weight:g} with --lm; 0: none)")
    p.add_argument("--word-lm", help="word n-gram LM (.safetensors, from train-word-lm) that beam search consults at each word's end")
    p.add_argument("--word-lm-weight", type=float, default=None, help=f"word LM weight (default {DEFAULTS.word_lm_weight:g} with --word-lm)")
    p.add_argument("--batch-size", type=positive, default=16, help="utterances decoded together (default 16)")
    p.add_argument("--keep-level", action="store_true",
        help="decode at the recorded level (by default, as transcribe: scaled into the training range where outside it)")
    p.add_argument("--overwrite", action="store_true", help="decode again even if OUTPUT is complete")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available, else cpu)")
    p.add_argument("--threads", type=positive, default=None, help="torch's CPU threads (default 1); decoding also borrows a second core where one is free")
    p.set_defaults(run=_run_decode)


def _run_decode(args: argparse.Namespace) -> int:
    if args.beam == 1 and (args.lm or args.lm_weight is not None or args.internal_lm_weight is not None or args.ctc_weight is not None
                           or args.word_lm or args.word_lm_weight is not None):
        return fail("--lm, --lm-weight, --internal-lm-weight, --word-lm, --word-lm-weight and --ctc-weight only apply to beam search: "
                     "add --beam N (e.g. --beam 16)", status=2)
    for flag, value, needs in (("--lm-weight", args.lm_weight, args.lm), ("--internal-lm-weight", args.internal_lm_weight, args.lm),
                               ("--word-lm-weight", args.word_lm_weight, args.word_lm)):
        if value is not None and not needs:
            return fail(f"{flag} needs {'--word-lm' if flag == '--word-lm-weight' else '--lm'}", status=2)
    output = Path(args.output)
    if not output.parent.is_dir():
        return fail(f"--output {output}: folder {output.parent} does not exist", status=2)
    if output.is_file() and not args.overwrite:
        return fail(f"--output {output}: exists and is complete; add --overwrite to decode again", status=2)
    apply_threads(args, decoding=True)
    import torch

    from speech_s2s.builder import RecognizerConfig, build_decoding
    from speech_s2s.data.corpus import CorpusError, read_manifest
    from speech_s2s.evaluation.corpus_decode import (
        decode_utterances,
        partial_path,
        run_signature,
    )
    from speech_s2s.frontend.level import decoding_level

    try:
        utterances = read_manifest(args.manifest)
    except CorpusError as error:
        return fail(str(error))
    except OSError as error:
        return fail(f"{args.manifest}: {(error.strerror or str(error)).lower()}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    config = RecognizerConfig(model=args.model, lm=args.lm or False, word_lm=args.word_lm or False, decoding=decoding_from_args(args), device=device,
                              int8_search=not args.float_search)
    try:
        built = build_decoding(config)
    except ValueError as error:  # a model or LM file that cannot be used: the message names it
        return fail(str(error))
    model, lm, options = built.model, built.lm, built.options
    if output.is_file():
        output.unlink()
    level = decoding_level(model.input_level_db, args.keep_level)
    signature = run_signature(args.model, options, args.lm, level, args.word_lm, built.word_lm_weights,
                              int8_search=config.int8_search_used)
    done = decode_utterances(model, utterances, output, options, signature, lm, args.batch_size, device, keep_level=args.keep_level)
    if done.reused:
        print(f"speech-s2s: resumed: {done.reused} of {done.total} utterances were already decoded", file=sys.stderr)
    for utterance_id, why in done.unreadable:
        print(f"speech-s2s: error: {utterance_id}: {why}", file=sys.stderr)
    if not done.complete:
        print(f"speech-s2s: {len(done.unreadable)} of {done.total} utterances could not be read; the others are in "
              f"{partial_path(output)}: repair or remove those and rerun to finish {output}", file=sys.stderr)
        return 1
    print(f"{output}: {done.total} utterances")
    return 0
