"""`speech-s2s train-lm` and `speech-s2s train-word-lm`: the character LM and the word n-gram LM."""

from __future__ import annotations

import argparse
from pathlib import Path

from speech_s2s.cli.options import (
    MAX_DEFAULT_THREADS,
    apply_threads,
    fail,
    given,
    positive,
)


def add_train_lm(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-lm", help="train a character LSTM LM for shallow fusion")
    p.add_argument("--text", nargs="+", required=True, help="text files (one sentence per line; a leading 'utt-id' is stripped with --kaldi) or corpora")
    p.add_argument("--kaldi", action="store_true", help="lines are 'utt-id TEXT'")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, help="updates (default 3000)")
    p.add_argument("--batch-size", type=int, help="sentences per update (default 64)")
    p.add_argument("--hidden", type=int, help="LSTM units (default 512)")
    p.add_argument("--layers", type=int, help="LSTM layers (default 2)")
    p.add_argument("--init", metavar="LM", help="go on training this LM (.safetensors; its shape, so no --hidden/--layers), e.g. the bundled one")
    p.add_argument("--lr", type=float, help="peak learning rate, decayed linearly to a tenth (default 2e-3)")
    p.add_argument("--held-out", type=int, default=1000, metavar="N",
                   help="sentences kept out of training to measure bits per character on (default 1000; 0: none)")
    p.add_argument("--threads", type=positive, help=f"CPU threads (default: the CPUs this process may use, at most {MAX_DEFAULT_THREADS})")
    p.add_argument("--resume", action="store_true", help="go on from OUT.checkpoint, which the run saves every 5 minutes and when it stops")
    p.add_argument("--max-minutes", type=float, help="stop cleanly after this many minutes (then --resume)")
    p.set_defaults(run=_run_train_lm)


def _run_train_lm(args: argparse.Namespace) -> int:
    apply_threads(args)
    from speech_s2s.decoding.char_lm import (
        CharLMConfig,
        CharLMTrainConfig,
        LMCheckpointing,
        LMError,
        LMResumeError,
        bits_per_character,
        lm_checkpoint_step,
        load_lm,
        save_lm,
        split_held_out,
        train_char_lm,
    )
    from speech_s2s.text import TranscriptError, Vocabulary

    if args.init and (args.hidden or args.layers):
        return fail("--init takes the LM's shape from LM; drop --hidden/--layers")
    checkpoint = Path(f"{args.out}.checkpoint")
    if checkpoint.is_file() and not args.resume:
        return fail(f"{checkpoint} exists (a run that stopped early): --resume goes on from it; delete it to start over")
    try:
        init = load_lm(args.init) if args.init else None
    except LMError as error:
        return fail(str(error))
    vocabulary, sentences = Vocabulary(), []
    for name in args.text:
        for number, line in enumerate(Path(name).read_text(encoding="utf-8").splitlines(), start=1):
            text = line.split(maxsplit=1)[1] if args.kaldi and len(line.split(maxsplit=1)) == 2 else ("" if args.kaldi else line)
            try:
                vocabulary.encode(text)
            except TranscriptError as error:
                return fail(f"{name}:{number}: {error}")
            if text.strip():
                sentences.append(text)
    if args.held_out < 0:
        return fail(f"--held-out {args.held_out}: a number of sentences, 0 or more")
    if args.held_out >= len(sentences):
        return fail(f"--held-out {args.held_out}: the text has only {len(sentences)} sentences")
    sentences, held_out = split_held_out(sentences, args.held_out)
    before = f"{bits_per_character(init, held_out):.4f} bits/char before, " if init is not None and held_out else ""
    config = CharLMConfig(**given(hidden_size=args.hidden, num_layers=args.layers))
    train = CharLMTrainConfig(**given(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr))
    try:
        model = train_char_lm(sentences, config, train, init=init,
                              checkpointing=LMCheckpointing(checkpoint, resume=args.resume, max_minutes=args.max_minutes))
    except LMResumeError as error:
        return fail(str(error))
    done = lm_checkpoint_step(checkpoint)
    if done < train.steps:
        print(f"{checkpoint}: stopped after {done} of {train.steps} updates; the same command with --resume goes on")
        return 0
    save_lm(model, args.out)
    checkpoint.unlink()
    measured = f"; {len(held_out)} held-out sentences: {before}{bits_per_character(model, held_out):.4f} bits/char" if held_out else ""
    print(f"{args.out}: character LM trained on {len(sentences)} sentences{measured}")
    return 0


def add_train_word_lm(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-word-lm", help="estimate a word n-gram LM (Kneser-Ney) that beam search consults at each word's end",
                       description="Estimate an interpolated Kneser-Ney word n-gram LM from text, for `transcribe --word-lm`. "
                       "Seconds for a few million words.")
    p.add_argument("--text", nargs="+", required=True, help="text files, one sentence per line (a leading 'utt-id' is stripped with --kaldi)")
    p.add_argument("--kaldi", action="store_true", help="lines are 'utt-id TEXT'")
    p.add_argument("--out", required=True)
    p.add_argument("--order", type=int, choices=(1, 2, 3), default=3, help="n-gram order (default 3)")
    p.add_argument("--min-count", type=positive, default=2, help="n-grams of order 2 and up seen fewer times are left out (default 2)")
    p.add_argument("--held-out", type=int, default=1000, metavar="N",
                   help="sentences kept out of the estimate to measure perplexity on (default 1000, the ones train-lm keeps out; 0: none)")
    p.set_defaults(run=_run_train_word_lm)


def _run_train_word_lm(args: argparse.Namespace) -> int:
    from speech_s2s.decoding.char_lm import split_held_out
    from speech_s2s.decoding.word_lm import (
        WordLMConfig,
        estimate_word_lm,
        perplexity,
        save_word_lm,
    )

    sentences = []
    for name in args.text:
        try:
            lines = Path(name).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            return fail(f"{name}: {error.strerror if isinstance(error, OSError) else 'not UTF-8 text'}")
        for line in lines:
            text = (line.split(maxsplit=1)[1:] or [""])[0] if args.kaldi else line
            if text.strip():
                sentences.append(text)
    if not 0 <= args.held_out < len(sentences):
        return fail(f"--held-out {args.held_out}: from 0 to {len(sentences) - 1} (the text has {len(sentences)} sentences)")
    sentences, held_out = split_held_out(sentences, args.held_out)
    lm = estimate_word_lm(sentences, WordLMConfig(order=args.order, min_count=args.min_count))
    save_word_lm(lm, args.out)
    sizes = ", ".join(f"{len(lm.tables[f'{n}.keys']):,} {n}-grams" for n in range(2, args.order + 1))
    measured = f"; {len(held_out)} held-out sentences: perplexity {perplexity(lm, held_out):.1f}" if held_out else ""
    print(f"{args.out}: {len(lm.words) - 3:,} words{', ' + sizes if sizes else ''} from {len(sentences)} sentences{measured}")
    return 0
