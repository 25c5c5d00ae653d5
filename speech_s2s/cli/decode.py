"""`speech-s2s decode`: whole utterances of a manifest, for scoring; resumable."""

from __future__ import annotations

import sys
from pathlib import Path

from speech_s2s.cli.options import apply_threads, fail, positive


def add_decode(sub) -> None:
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
    p.add_argument("--ctc-weight", type=float, default=None, help="CTC share of the joint beam score (default 0.2; beam search only)")
    p.add_argument("--lm", help="character LM (.safetensors) for shallow fusion (beam search only)")
    p.add_argument("--lm-weight", type=float, default=None, help="LM weight for shallow fusion (default 0.5 with --lm)")
    p.add_argument("--internal-lm-weight", type=float, default=None,
                   help="weight of the decoder's own LM, subtracted beside the LM (default 0.15 with --lm; 0: none)")
    p.add_argument("--word-lm", help="word n-gram LM (.safetensors, from train-word-lm) that beam search consults at each word's end")
    p.add_argument("--word-lm-weight", type=float, default=None, help="word LM weight (default 0.4 with --word-lm)")
    p.add_argument("--batch-size", type=positive, default=16, help="utterances decoded together (default 16)")
    p.add_argument("--keep-level", action="store_true", help="decode at the recorded level (by default, as transcribe: scaled into the training range where outside it)")
    p.add_argument("--overwrite", action="store_true", help="decode again even if OUTPUT is complete")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available, else cpu)")
    p.add_argument("--threads", type=positive, default=None, help="CPU threads (default 1)")
    p.set_defaults(run=_run_decode)


def _run_decode(args) -> int:
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

    from speech_s2s.data.corpus import CorpusError, read_manifest
    from speech_s2s.evaluation.corpus_decode import decode_utterances, partial_path, run_signature
    from speech_s2s.frontend.level import decoding_level
    from speech_s2s.model.files import ModelFileError, load_model
    from speech_s2s.decoding.search import DecodingOptions, with_overrides
    from speech_s2s.transcribe import fusion_weights, with_word_lm
    from speech_s2s.decoding.word_fusion import WordFusion

    try:
        utterances = read_manifest(args.manifest)
        model = load_model(args.model)
    except (CorpusError, ModelFileError) as error:
        return fail(str(error))
    except OSError as error:
        return fail(f"{args.manifest}: {(error.strerror or str(error)).lower()}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    lm = None
    if args.lm:
        from speech_s2s.decoding.char_lm import load_lm

        try:
            lm = load_lm(args.lm, vocabulary=model.vocabulary).to(device)
        except ValueError as error:
            return fail(str(error))
    options = with_overrides(DecodingOptions(), beam_size=args.beam, ctc_weight=args.ctc_weight,
                             **fusion_weights(lm is not None, args.lm_weight, args.internal_lm_weight))
    try:
        lm, options = with_word_lm(args.word_lm, model.vocabulary, options, lm, args.word_lm_weight)
    except ValueError as error:  # WordLMError
        return fail(str(error))
    if output.is_file():
        output.unlink()
    level = decoding_level(model.input_level_db, args.keep_level)
    signature = run_signature(args.model, options, args.lm, level, args.word_lm, lm.weights if isinstance(lm, WordFusion) else None)
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
