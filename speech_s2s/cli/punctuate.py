"""`speech-s2s punctuate` and `speech-s2s train-punctuation`: the punctuation-and-case restorer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speech_s2s.cli.options import MAX_DEFAULT_THREADS, apply_threads, fail, given, positive


def add_punctuate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("punctuate", help="restore case and punctuation of lowercase transcript lines")
    p.add_argument("inputs", nargs="*", help="text files, one transcript a line (default: standard input)")
    p.add_argument("--model", help="restorer (.safetensors; default: the bundled one)")
    p.add_argument("--kaldi", action="store_true", help="lines are 'utt-id TEXT': the id is kept as it is")
    p.add_argument("--threads", type=positive, help="CPU threads (default 1)")
    p.set_defaults(run=_run_punctuate)


def _run_punctuate(args: argparse.Namespace) -> int:
    import torch

    from speech_s2s.punctuation.model import PunctuationModelError
    from speech_s2s.punctuation.restore import Restorer

    torch.set_num_threads(args.threads or 1)
    try:
        restorer = Restorer.load(args.model)
    except PunctuationModelError as error:
        return fail(str(error))
    sources = args.inputs or ["-"]
    for name in sources:
        try:
            handle = sys.stdin if name == "-" else open(name, encoding="utf-8", errors="replace")
        except OSError as error:
            return fail(f"{name}: {error.strerror}")
        with handle if name != "-" else open(0, closefd=False, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                line = line.rstrip("\n")
                if args.kaldi:
                    key, _, text = line.partition(" ")
                    print(f"{key} {restorer.restore(text)}".rstrip())
                else:
                    print(restorer.restore(line))
    return 0


def source_weight(text: str) -> tuple[str, float]:
    """GROUP=WEIGHT -> (group, weight); train_restorer refuses a group its text lacks."""
    group, equals, weight = text.partition("=")
    try:
        value = float(weight)
    except ValueError:
        value = -1.0
    if not equals or not group or not value >= 0:
        raise argparse.ArgumentTypeError(f"expected GROUP=WEIGHT with a weight of 0 or more (books=0.4), got {text!r}")
    return group, value


def add_train_punctuation(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-punctuation", help="train the punctuation-and-case restorer on cased, punctuated text")
    p.add_argument("--train", required=True, help="source<TAB>sentence lines (tools/punctuation_text.py writes train.tsv)")
    p.add_argument("--dev", help="the same for the learning curve (dev.tsv)")
    p.add_argument("--out", required=True, help="the restorer (.safetensors); OUT.checkpoint, OUT.history.json and OUT.png beside it")
    p.add_argument("--steps", type=int, help="updates (default 20000)")
    p.add_argument("--batch-size", type=int, help="windows per update (default 32)")
    p.add_argument("--vocabulary", type=int, help="known words (default 4000)")
    p.add_argument("--hidden", type=int, help="BiLSTM units per direction (default 128)")
    p.add_argument("--layers", type=positive, default=2, help="BiLSTM layers (default 2, as the bundled restorer)")
    p.add_argument("--source-weights", nargs="+", metavar="GROUP=WEIGHT", type=source_weight,
                   help="how often each group of sources is drawn: books, sotu, ding, wordnet (default books=0.4 sotu=0.3 ding=0.15 wordnet=0.15)")
    p.add_argument("--lr", type=float, help="peak learning rate, decayed linearly to a tenth (default 3e-3)")
    p.add_argument("--threads", type=positive, help=f"CPU threads (default: the CPUs this process may use, at most {MAX_DEFAULT_THREADS})")
    p.add_argument("--resume", action="store_true", help="go on from OUT.checkpoint, which the run saves every 5 minutes and when it stops")
    p.add_argument("--max-minutes", type=float, help="stop cleanly after this many minutes (then --resume)")
    p.set_defaults(run=_run_train_punctuation)


def _run_train_punctuation(args: argparse.Namespace) -> int:
    apply_threads(args)
    import json

    from speech_s2s.punctuation.model import PunctuationConfig, save_restorer
    from speech_s2s.punctuation.train import Checkpointing, PunctuationTrainConfig, ResumeError, checkpoint_step, read_tsv, train_restorer
    from speech_s2s.training.plots import plot_restorer_curve

    checkpoint = Path(f"{args.out}.checkpoint")
    if checkpoint.is_file() and not args.resume:
        return fail(f"{checkpoint} exists (a run that stopped early): --resume goes on from it; delete it to start over")
    try:
        train_text = read_tsv(args.train)
        dev_text = read_tsv(args.dev) if args.dev else {}
    except (OSError, UnicodeDecodeError) as error:
        return fail(f"cannot read the text: {error}")
    weights = tuple(args.source_weights) if args.source_weights else None
    train = PunctuationTrainConfig(**given(steps=args.steps, batch_size=args.batch_size, vocabulary_size=args.vocabulary, learning_rate=args.lr,
                                           weights=weights))
    config = PunctuationConfig(**given(hidden_size=args.hidden), layers=args.layers)
    try:
        model, history = train_restorer(train_text, dev_text, config, train,
                                        Checkpointing(checkpoint, resume=args.resume, max_minutes=args.max_minutes))
    except (ResumeError, ValueError) as error:
        return fail(str(error))
    Path(f"{args.out}.history.json").write_text(json.dumps(history) + "\n")
    plot_restorer_curve(history, f"{args.out}.png")
    done = checkpoint_step(checkpoint)
    if done < train.steps:
        print(f"stopped after {done} of {train.steps} updates; go on with --resume", file=sys.stderr)
        return 0
    save_restorer(model, args.out)
    dev = [r for r in history if "dev_f1" in r]
    print(f"wrote {args.out}" + (f" (dev F1 {dev[-1]['dev_f1']:.3f}, case accuracy {dev[-1]['dev_case']:.3f})" if dev else ""))
    return 0
