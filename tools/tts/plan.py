"""Speakers and utterances, decided up front from the seed.

- ``test-tts`` is the project's benchmark and is frozen: its speakers, sentences and per-utterance settings are
  what the first version of the tool made with ``--seed S --dev-utts 300 --test-utts N`` (the legacy functions
  below replay it; do not change them). Its espeak-ng, flite and festival audio is sample-identical to the first
  tool's; piper draws its noise afresh on every call, there as here, so piper audio never repeats exactly.
- ``dev-tts``: speakers of every selected engine that occur nowhere else, reading *Northanger Abbey*.
- ``train-tts``: many speakers per engine, each a voice with its own rate, pitch and vocal-tract length;
  utterances drawn by engine with TRAIN_ENGINE_WEIGHTS, then the least-used speaker of that engine.
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence

from . import ENGINES
from .engine import Settings, gender, speaker_voices, voice_parts
from .text import TEST_BOOK, TextPools

SPLITS: tuple[str, str, str] = ("train-tts", "dev-tts", "test-tts")
SPLIT_ID_BASE: dict[str, int] = {"train-tts": 1000, "dev-tts": 2000, "test-tts": 3000}
UTTS_PER_CHAPTER = 50
WORDS_PER_SECOND = 3.25  # measured average of this corpus after trimming (planning only)
SPEED_FACTORS: tuple[float, ...] = (0.9, 1.0, 1.1)  # per train utterance, Kaldi-style (tempo and pitch)
EDGE_SILENCE_RANGE = (0.1, 0.3)  # seconds of silence kept at each end
PEAK_RANGE = (0.5, 0.95)  # peak amplitude after normalisation
# Vocal-tract length factor per new speaker: formants (and F0) scaled by it, duration kept (render.vtl_shift).
VTL_RANGE = (0.9, 1.1)

# Share of train utterances per engine. RHVoice sounds the most human; espeak's formant voices stay a
# minority (<= 15 % of train audio; they are also the fastest talkers, so their audio share is lower still).
TRAIN_ENGINE_WEIGHTS: dict[str, float] = {
    "rhvoice": 0.36, "festival": 0.15, "piper": 0.12, "mbrola": 0.12, "flite": 0.08, "pico": 0.07, "espeak": 0.10,
    "kokoro": 0.36,  # not a default engine (tts.DEFAULT_ENGINES); its weight counts where it is chosen
}
FREE_VOICE_WEIGHT = 2  # within an engine, a free voice gets twice the speakers of a non-free one
# Speakers per engine: (train, dev).
SPEAKER_COUNTS: dict[str, tuple[int, int]] = {
    "rhvoice": (60, 3), "festival": (32, 2), "piper": (16, 2), "mbrola": (26, 2), "flite": (20, 2),
    "pico": (12, 1), "espeak": (24, 2), "kokoro": (150, 4),
}


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One synthetic reader: an engine, a voice and fixed settings (``vtl`` is applied after synthesis)."""

    speaker_id: int
    split: str
    engine: str
    voice: str
    settings: Settings

    @property
    def params(self) -> dict[str, float]:
        return dict(self.settings)

    @property
    def gender(self) -> str:
        return gender(ENGINES[self.engine], self.voice)

    def describe(self) -> str:
        opts = " ".join(f"{k}={v:g}" for k, v in self.settings)
        return f"{self.engine} voice={self.voice} {opts}".strip()


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


# --------------------------------------------------------------------------------------------------
# The frozen benchmark: the first tool's speakers (espeak, flite, festival, piper). Do not change.
# --------------------------------------------------------------------------------------------------

LEGACY_ENGINES: tuple[str, ...] = ("espeak", "flite", "festival", "piper")
LEGACY_SPEAKER_COUNTS: dict[str, tuple[int, int]] = {  # (dev, test)
    "espeak": (3, 3), "flite": (2, 2), "festival": (1, 1), "piper": (2, 2),
}
LEGACY_DEV_UTTS = 300  # the dev size the benchmark was made with: its draws precede test's
_LEGACY_ESPEAK_VOICES = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan",
                         "en-gb-x-gbcwmd", "en-us-nyc")
_LEGACY_ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                           "klatt", "klatt2", "klatt3")
_LEGACY_FLITE_VOICES = ("kal16", "awb", "rms", "slt")
_LEGACY_FESTIVAL_VOICES = ("voice_kal_diphone", "voice_ked_diphone", "voice_cmu_us_slt_arctic_hts")


def _legacy_candidates(engine: str, rng: random.Random) -> list[tuple[str, Settings]]:
    cands: list[tuple[str, Settings]] = []
    if engine == "espeak":
        cands = [(f"{v}+{var}", ()) for v in _LEGACY_ESPEAK_VOICES for var in _LEGACY_ESPEAK_VARIANTS]
    elif engine == "flite":
        cands = [(v, (("duration_stretch", s), ("pitch_factor", p))) for v in _LEGACY_FLITE_VOICES
                 for s in (0.8, 0.9, 1.0, 1.1, 1.2, 1.3) for p in (0.9, 1.0, 1.12)]
    elif engine == "festival":
        cands = [(v, (("duration_stretch", s),)) for v in _LEGACY_FESTIVAL_VOICES for s in (0.85, 0.95, 1.0, 1.1, 1.2)]
    elif engine == "piper":
        cands = [("en_US-joe-medium", (("length_scale", ls), ("noise_scale", ns)))
                 for ls in (0.8, 0.9, 1.0, 1.1, 1.2, 1.3) for ns in (0.4, 0.667, 0.9)]
    rng.shuffle(cands)
    by_voice: dict[str, list[tuple[str, Settings]]] = defaultdict(list)
    for c in cands:
        by_voice[c[0].split("+")[0]].append(c)
    interleaved: list[tuple[str, Settings]] = []
    while any(by_voice.values()):
        for key in list(by_voice):
            if by_voice[key]:
                interleaved.append(by_voice[key].pop())
    return interleaved


def legacy_test_speakers(seed: int, engines: Sequence[str]) -> list[Speaker]:
    """The benchmark's test speakers, ids 3001.., for the legacy engines among ``engines``."""
    speakers: list[Speaker] = []
    for engine in (e for e in engines if e in LEGACY_ENGINES):
        rng = random.Random(f"speakers-{seed}-{engine}")
        cands = _legacy_candidates(engine, rng)
        n_dev, n_test = LEGACY_SPEAKER_COUNTS[engine]
        for i, (voice, settings) in enumerate(cands[: n_dev + n_test]):
            extra = list(settings)
            if engine == "espeak":
                extra = [("speed", float(rng.randint(140, 195))), ("pitch", float(rng.randint(25, 75)))]
            elif engine == "piper":
                extra.append(("noise_w", round(rng.uniform(0.5, 1.0), 2)))
            if i >= n_dev:
                speakers.append(Speaker(0, "test-tts", engine, voice, tuple(extra)))
    return [dataclasses.replace(s, speaker_id=SPLIT_ID_BASE["test-tts"] + i + 1) for i, s in enumerate(speakers)]


def legacy_test_jobs(seed: int, speakers: Sequence[Speaker], sentences: Sequence[str], n: int,
                     n_legacy_dev: int) -> list[Job]:
    """The benchmark's test jobs: round-robin speakers; the plan generator first served the dev jobs."""
    rng = random.Random(f"plan-{seed}")
    for _ in range(2 * n_legacy_dev):  # each legacy dev job drew edge silence and peak
        rng.random()
    return _assign("test-tts", [(TEST_BOOK, s) for s in sentences[:n]], _round_robin(speakers), rng, perturb=False)


# --------------------------------------------------------------------------------------------------
# New speakers: dev and train
# --------------------------------------------------------------------------------------------------

def _voice_weight(module, voice: str) -> int:
    """Speakers per pass of the voice cycle: the module's VOICE_WEIGHTS, else free voices twice the others."""
    weights: dict[str, float] = getattr(module, "VOICE_WEIGHTS", {})
    if voice in weights:
        return int(weights[voice])
    record = next((v for v in module.VOICES if v.name == voice), None)
    free = record.free if record is not None else all(v.free for v in module.VOICES)
    return FREE_VOICE_WEIGHT if free else 1


def _voice_cycle(engine: str, rng: random.Random, exclude: set[str]) -> Iterator[str]:
    """Voices for successive speakers: each pass visits every voice, _voice_weight times; a voice any of
    whose parts is in ``exclude`` is never chosen."""
    module = ENGINES[engine]
    voices = [v for v in speaker_voices(module) if not voice_parts(module, v) & exclude]
    weights = [_voice_weight(module, v) for v in voices]
    if len(set(weights)) == 1:  # all alike: once each per pass, so speakers repeat a voice only when they must
        weights = [1] * len(voices)
    pass_list = [v for v, w in zip(voices, weights) for _ in range(w)]
    while True:
        rng.shuffle(pass_list)
        yield from pass_list


def build_speakers(seed: int, engines: Sequence[str]) -> dict[str, list[Speaker]]:
    """All speakers. No (engine, voice, settings) occurs in two splits; for engines whose voice is the
    speaker's identity (espeak's variants), no voice does either."""
    test = legacy_test_speakers(seed, engines)
    speakers: dict[str, list[Speaker]] = {"train-tts": [], "dev-tts": [], "test-tts": test}
    taken = {(s.engine, s.voice, s.settings) for s in test}
    for engine in engines:
        module = ENGINES[engine]
        rng = random.Random(f"speakers-v2-{seed}-{engine}")
        held_out = {s.voice for s in test if s.engine == engine} if module.HOLD_OUT_VOICES else set()
        n_train, n_dev = SPEAKER_COUNTS[engine]
        for split, n in (("dev-tts", n_dev), ("train-tts", n_train)):
            voices = _voice_cycle(engine, rng, held_out)
            made: list[Speaker] = []
            while len(made) < n:
                voice = next(voices)
                settings = tuple(sorted(module.random_settings(voice, rng)
                                        + (("vtl", round(rng.uniform(*VTL_RANGE), 3)),)))
                if (engine, voice, settings) in taken:
                    continue
                taken.add((engine, voice, settings))
                made.append(Speaker(0, split, engine, voice, settings))
            speakers[split] += made
            if module.HOLD_OUT_VOICES:
                held_out |= {part for s in made for part in voice_parts(module, s.voice)}
    for split in ("train-tts", "dev-tts"):
        speakers[split] = [dataclasses.replace(s, speaker_id=SPLIT_ID_BASE[split] + i + 1)
                           for i, s in enumerate(speakers[split])]
    return speakers


# --------------------------------------------------------------------------------------------------
# Utterances
# --------------------------------------------------------------------------------------------------

def _assign(split: str, items: Sequence[tuple[str, str]], chooser: Iterator[Speaker], rng: random.Random,
            perturb: bool) -> list[Job]:
    counts: dict[int, int] = defaultdict(int)
    jobs: list[Job] = []
    for source, text in items:
        spk = next(chooser)
        k = counts[spk.speaker_id]
        counts[spk.speaker_id] += 1
        chapter = spk.speaker_id * 100 + k // UTTS_PER_CHAPTER
        speed = rng.choice(SPEED_FACTORS) if perturb else 1.0
        jobs.append(Job(split, spk, chapter, k % UTTS_PER_CHAPTER, text, source, speed,
                        round(rng.uniform(*EDGE_SILENCE_RANGE), 3), round(rng.uniform(*PEAK_RANGE), 3)))
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


def build_plan(pools: TextPools, speakers: dict[str, list[Speaker]], seed: int, *, train_hours: float,
               dev_utts: int, test_utts: int, max_train_utts: int | None = None) -> list[Job]:
    """Every utterance of the corpus: dev, test, then train jobs (train grows by appending)."""
    dev_rng = random.Random(f"dev-plan-{seed}")
    jobs = _assign("dev-tts", [(pools.dev_source, s) for s in pools.dev[:dev_utts]], _round_robin(speakers["dev-tts"]),
                   dev_rng, perturb=False)
    jobs += legacy_test_jobs(seed, speakers["test-tts"], pools.test, test_utts,
                             min(LEGACY_DEV_UTTS, pools.legacy_dev_size))
    target_words = train_hours * 3600.0 * WORDS_PER_SECOND
    items: list[tuple[str, str]] = []
    words = 0
    for source, text in pools.train:
        if words >= target_words or (max_train_utts is not None and len(items) >= max_train_utts):
            break
        items.append((source, text))
        words += len(text.split())
    train_rng = random.Random(f"train-{seed}")
    jobs += _assign("train-tts", items, _weighted_balanced(speakers["train-tts"], train_rng), train_rng,
                    perturb=True)
    return jobs
