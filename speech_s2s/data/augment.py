"""Waveform augmentation that imitates real recordings: speaker, room, noise and channel.

Every function maps 16 kHz mono float32 samples [S] to new samples; `Augmenter` chains them with
random parameters drawn from an explicit `numpy.random.Generator`, so the same generator state
gives the same output. The chain follows the path of sound from a talker to a file:

    speaker (speed, vocal-tract length) -> room (impulse response) -> noise at a random SNR
    -> microphone and channel (EQ, band limit, telephone, MP3/Opus) -> level (gain, clipping)

Rooms come from a bank of impulse responses made offline by `tools/make_rir_bank.py`; noise is
coloured noise, babble from other utterances, and audio files from directories (e.g. the music
of Debian's asterisk-moh-opsound-wav).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import scipy.fft
import soundfile
from scipy import signal

from speech_s2s.frontend.audio import SAMPLE_RATE, load_audio

NOISE_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
TELEPHONE_RATE = 8000  # narrowband telephony
TELEPHONE_BAND = (300.0, 3400.0)  # the ITU-T G.712 passband of a phone line
MU = 255  # G.711 mu-law
CODECS = {"mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS")}
# libsndfile compression level ranges (0 = best): MP3 0.5-0.99 is ~30-19 kbit/s, Opus 0.8-0.99 ~45-11 kbit/s.
CODEC_LEVELS = {"mp3": (0.5, 0.99), "opus": (0.8, 0.99)}
NOISE_KINDS = ("coloured", "babble", "file")
COLOURS = {"white": 0.0, "pink": 0.5, "brown": 1.0}  # amplitude slope: |X(f)| ~ f^-exponent
EPS = 1e-12  # guards divisions by the energy of silence


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities (per utterance) and ranges (uniform unless said) of each augmentation."""

    speed_prob: float = 0.67  # Kaldi's recipe: three copies at 0.9, 1.0, 1.1
    speeds: tuple[float, ...] = (0.9, 1.1)
    vtlp_prob: float = 0.3
    vtlp_range: tuple[float, float] = (0.9, 1.1)  # frequency warp factor alpha
    rir_bank: str | None = None  # .npz from tools/make_rir_bank.py; None: no reverberation
    reverb_prob: float = 0.3
    noise_dirs: tuple[str, ...] = ()  # audio files to mix in as noise (music, ambience)
    noise_prob: float = 0.5
    noise_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # coloured, babble, file
    snr_range: tuple[float, float] = (0.0, 30.0)  # dB
    babble_talkers: tuple[int, int] = (3, 7)  # inclusive
    eq_prob: float = 0.4
    eq_bands: tuple[int, int] = (1, 3)  # inclusive
    eq_gain_db: float = 10.0  # each band boosts or cuts by up to this
    bandlimit_prob: float = 0.2
    highpass_range: tuple[float, float] = (50.0, 400.0)  # Hz
    lowpass_range: tuple[float, float] = (3000.0, 7500.0)  # Hz
    telephone_prob: float = 0.1
    mu_law_prob: float = 0.5  # of telephone round trips
    codec_prob: float = 0.2
    codecs: tuple[str, ...] = ("mp3", "opus")
    peak_range_db: tuple[float, float] = (-35.0, -1.0)  # final peak level, dB full scale
    clip_prob: float = 0.05
    clip_drive_db: tuple[float, float] = (1.0, 6.0)  # overdrive beyond full scale before clipping


PRESETS = {
    "light": dict(speed_prob=0.5, vtlp_prob=0.1, reverb_prob=0.15, noise_prob=0.3, snr_range=(10.0, 35.0), eq_prob=0.2,
                  bandlimit_prob=0.1, telephone_prob=0.05, codec_prob=0.1, peak_range_db=(-25.0, -1.0), clip_prob=0.0),
    "medium": {},
    # The microphone and line alone (no speed, vocal tract, room or noise): a third of the utterances
    # coloured, band-limited, through an 8 kHz phone line or a lossy codec.
    "channel": dict(speed_prob=0.0, vtlp_prob=0.0, reverb_prob=0.0, noise_prob=0.0, eq_prob=0.3, bandlimit_prob=0.2,
                    telephone_prob=0.15, codec_prob=0.15, peak_range_db=(-25.0, -1.0), clip_prob=0.0),
    "strong": dict(vtlp_prob=0.5, reverb_prob=0.5, noise_prob=0.7, snr_range=(-5.0, 25.0), eq_prob=0.6, bandlimit_prob=0.3,
                   telephone_prob=0.2, codec_prob=0.3, peak_range_db=(-45.0, -1.0), clip_prob=0.1),
}


def preset(name: str, **overrides) -> AugmentConfig:
    """A named strength ("light", "medium" = the defaults, "strong"), or "channel" (the microphone and
    line stages alone), with sources or other fields set."""
    return AugmentConfig(**{**PRESETS[name], **overrides})


# ---------------------------------------------------------------------------------------------- speaker
def speed_perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster, as sox `speed` in Kaldi: tempo and pitch both change, S -> S / factor."""
    ratio = Fraction(1 / factor).limit_denominator(100)  # 0.9 -> 10/9, 1.1 -> 10/11
    return signal.resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)


def vtlp(x: np.ndarray, alpha: float, boundary: float = 4800.0, n_fft: int = 512) -> np.ndarray:
    """Vocal-tract length perturbation (Jaitly & Hinton 2013) applied to the waveform.

    VTLP warps frequency piecewise-linearly: f -> alpha f up to a knee near `boundary`, then a
    line that keeps Nyquist fixed; alpha > 1 moves formants up, as a shorter vocal tract does.
    Here a phase vocoder does the warp on the STFT: each output bin takes the magnitude and the
    instantaneous frequency of the input at the warped-from position, the frequency is warped
    too, and phases are re-accumulated from it so overlapping frames still add up coherently.
    Doing it on the waveform (rather than on the mel filterbank) keeps feature code unaware of
    it. Length is unchanged; alpha = 1 is the identity.
    """
    hop, nyquist, num_bins = n_fft // 4, SAMPLE_RATE / 2, n_fft // 2 + 1
    knee = boundary * min(alpha, 1.0) / alpha  # input frequency where the slope changes

    def warp(f: np.ndarray) -> np.ndarray:
        return np.where(f <= knee, alpha * f, alpha * knee + (f - knee) * (nyquist - alpha * knee) / (nyquist - knee))

    def unwarp(g: np.ndarray) -> np.ndarray:
        return np.where(g <= alpha * knee, g / alpha, knee + (g - alpha * knee) * (nyquist - knee) / (nyquist - alpha * knee))

    if alpha == 1.0:
        return np.asarray(x, dtype=np.float32)
    _, _, spectrum = signal.stft(x, nperseg=n_fft, noverlap=n_fft - hop)  # [K, T]
    source = unwarp(np.linspace(0.0, nyquist, num_bins)) / nyquist * (num_bins - 1)  # fractional input bin
    low = np.minimum(source.astype(int), num_bins - 2)
    weight = (source - low).astype(np.float32)[:, None]
    magnitude = np.abs(spectrum)
    magnitude = (1 - weight) * magnitude[low] + weight * magnitude[low + 1]
    nearest = np.where(weight[:, 0] < 0.5, low, low + 1)
    advance = np.diff(np.angle(spectrum[nearest]), axis=1, prepend=0.0) - (2 * np.pi * hop / n_fft) * nearest[:, None]
    advance -= 2 * np.pi * np.round(advance / (2 * np.pi))  # wrapped deviation from the bin centre's advance
    frequency = (nearest[:, None] + advance * (n_fft / (2 * np.pi * hop))) * (nyquist / (num_bins - 1))  # instantaneous, Hz
    phase = np.cumsum(warp(frequency) * (2 * np.pi * hop / SAMPLE_RATE), axis=1)
    _, y = signal.istft(magnitude * np.cos(phase) + 1j * (magnitude * np.sin(phase)), nperseg=n_fft, noverlap=n_fft - hop)
    return _fit_length(y, len(x))


# ---------------------------------------------------------------------------------------------- room
def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with an impulse response (FFT), aligned on its direct path so speech does not move.

    The output keeps the input's length and energy; a unit impulse gives back the input.
    """
    rir = rir[int(np.argmax(np.abs(rir))) :]
    y = signal.fftconvolve(x, rir)[: len(x)]
    return (y * np.sqrt(_energy(x) / max(_energy(y), EPS))).astype(np.float32)


# ---------------------------------------------------------------------------------------------- noise
def coloured_noise(num_samples: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power falls as f^0 (white), f^-1 (pink) or f^-2 (brown), unit RMS."""
    length = scipy.fft.next_fast_len(num_samples, real=True)  # a prime length would make the FFT slow
    spectrum = rng.standard_normal(length // 2 + 1) + 1j * rng.standard_normal(length // 2 + 1)
    spectrum *= np.maximum(np.fft.rfftfreq(length, 1 / SAMPLE_RATE), 20.0) ** -COLOURS[colour]  # flat below 20 Hz
    spectrum[0] = 0.0
    noise = scipy.fft.irfft(spectrum, length)[:num_samples]
    return (noise / np.sqrt(max(_energy(noise), EPS))).astype(np.float32)


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix `noise` (tiled or cut to len(x)) so that speech power / noise power = snr_db over the utterance."""
    noise = _fit_length(np.resize(noise, max(len(noise), len(x))), len(x))
    scale = np.sqrt(_energy(x) / max(_energy(noise), EPS) / 10 ** (snr_db / 10))
    return (x + scale * noise).astype(np.float32)


def babble(speech: Sequence[np.ndarray], num_samples: int, talkers: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of `talkers` random utterances from `speech`, each at equal power and a random offset."""
    total = np.zeros(num_samples, dtype=np.float32)
    for index in rng.integers(0, len(speech), talkers):
        talker = _as_float(speech[index])
        talker = np.roll(np.resize(talker, max(len(talker), num_samples)), int(rng.integers(0, max(1, len(talker)))))[:num_samples]
        total += talker / np.sqrt(max(_energy(talker), EPS))
    return total


# ---------------------------------------------------------------------------------------------- channel
def biquad(kind: str, freq: float, gain_db: float, q: float = 0.707) -> np.ndarray:
    """One second-order section [b0 b1 b2 1 a1 a2] from the RBJ Audio EQ Cookbook: 'peak', 'lowshelf' or 'highshelf'."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * freq / SAMPLE_RATE
    cos, alpha = np.cos(w0), np.sin(w0) / (2 * q)
    if kind == "peak":
        b = [1 + alpha * a, -2 * cos, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cos, 1 - alpha / a]
    else:
        sign = 1 if kind == "lowshelf" else -1
        root = 2 * np.sqrt(a) * alpha
        b = [a * ((a + 1) - sign * (a - 1) * cos + root), sign * 2 * a * ((a - 1) - sign * (a + 1) * cos), a * ((a + 1) - sign * (a - 1) * cos - root)]
        den = [(a + 1) + sign * (a - 1) * cos + root, -sign * 2 * ((a - 1) + sign * (a + 1) * cos), (a + 1) + sign * (a - 1) * cos - root]
    return np.array(b + den) / den[0]


def equalise(x: np.ndarray, sections: np.ndarray) -> np.ndarray:
    """Filter through biquad sections [K, 6] (a microphone's or room's colouring)."""
    return signal.sosfilt(sections, x).astype(np.float32)


def band_limit(x: np.ndarray, low: float | None, high: float | None, rate: int = SAMPLE_RATE) -> np.ndarray:
    """8th-order Butterworth high-pass at `low` and/or low-pass at `high` Hz (None: that side open)."""
    for cutoff, kind in ((low, "highpass"), (high, "lowpass")):
        if cutoff is not None:
            x = signal.sosfilt(signal.butter(8, cutoff, kind, fs=rate, output="sos"), x)
    return np.asarray(x, dtype=np.float32)


def mu_law(x: np.ndarray) -> np.ndarray:
    """G.711 mu-law round trip: compress, quantise to 8 bits, expand."""
    compressed = np.sign(x) * np.log1p(MU * np.abs(np.clip(x, -1, 1))) / np.log1p(MU)
    quantised = np.round((compressed + 1) / 2 * MU) / MU * 2 - 1
    return (np.sign(quantised) * np.expm1(np.abs(quantised) * np.log1p(MU)) / MU).astype(np.float32)


def telephone(x: np.ndarray, use_mu_law: bool) -> np.ndarray:
    """Down to 8 kHz, the 300-3400 Hz phone band, optionally mu-law, and back up to 16 kHz."""
    narrow = band_limit(signal.resample_poly(x, TELEPHONE_RATE, SAMPLE_RATE), *TELEPHONE_BAND, rate=TELEPHONE_RATE)
    if use_mu_law:
        narrow = mu_law(_normalise_peak(narrow, 0.9))
    return _fit_length(signal.resample_poly(narrow, SAMPLE_RATE, TELEPHONE_RATE), len(x))


def codec_round_trip(x: np.ndarray, codec: str, level: float) -> np.ndarray:
    """Encode to MP3 or Ogg/Opus in memory with libsndfile (>= 1.1 for MP3) at compression `level`, decode back."""
    container, subtype = CODECS[codec]
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(x, -1, 1), SAMPLE_RATE, format=container, subtype=subtype, compression_level=level)
    buffer.seek(0)
    decoded, _ = soundfile.read(buffer, dtype="float32")
    return _fit_length(decoded, len(x))


def clip(x: np.ndarray, drive_db: float) -> np.ndarray:
    """Amplify by `drive_db` and hard-clip at full scale, as an overdriven input stage does."""
    return np.clip(x * 10 ** (drive_db / 20), -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------- the chain
class Augmenter:
    """Random chain of the augmentations above. `speech` (other utterances, int16 or float) feeds babble.

    >>> y = Augmenter(AugmentConfig())(np.zeros(16000, np.float32), np.random.default_rng(0))
    """

    def __init__(self, config: AugmentConfig, speech: Sequence[np.ndarray] = ()):
        self.config = config
        self.speech = speech
        self.rirs = load_rir_bank(config.rir_bank) if config.rir_bank else []
        self.noises = load_noise_dirs(config.noise_dirs)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        x = _as_float(x)
        if rng.random() < c.speed_prob:
            x = speed_perturb(x, float(rng.choice(c.speeds)))
        if rng.random() < c.vtlp_prob:
            x = vtlp(x, rng.uniform(*c.vtlp_range))
        if self.rirs and rng.random() < c.reverb_prob:
            x = reverberate(x, self.rirs[int(rng.integers(len(self.rirs)))])
        if rng.random() < c.noise_prob:
            noise = self._noise(len(x), rng)
            if noise is not None:
                x = add_noise(x, noise, rng.uniform(*c.snr_range))
        x = _normalise_peak(x, 0.5)  # headroom for the channel stage
        if rng.random() < c.eq_prob:
            kinds = rng.choice(["peak", "peak", "lowshelf", "highshelf"], int(rng.integers(c.eq_bands[0], c.eq_bands[1] + 1)))
            sections = [biquad(k, _log_uniform(rng, 100, 6000), rng.uniform(-c.eq_gain_db, c.eq_gain_db), rng.uniform(0.5, 2.0)) for k in kinds]
            x = _normalise_peak(equalise(x, np.stack(sections)), 0.5)
        if rng.random() < c.bandlimit_prob:
            x = band_limit(x, rng.uniform(*c.highpass_range), rng.uniform(*c.lowpass_range))
        if rng.random() < c.telephone_prob:
            x = telephone(x, rng.random() < c.mu_law_prob)
        if c.codecs and rng.random() < c.codec_prob:
            codec = str(rng.choice(c.codecs))
            x = codec_round_trip(_normalise_peak(x, 0.9), codec, rng.uniform(*CODEC_LEVELS[codec]))
        x = _normalise_peak(x, 10 ** (rng.uniform(*c.peak_range_db) / 20))
        if rng.random() < c.clip_prob:
            x = clip(x / max(float(np.abs(x).max()), EPS), rng.uniform(*c.clip_drive_db))
        return np.clip(np.nan_to_num(x), -1.0, 1.0).astype(np.float32)

    def _noise(self, num_samples: int, rng: np.random.Generator) -> np.ndarray | None:
        weights = np.array(self.config.noise_weights, dtype=float) * [1.0, len(self.speech) > 0, len(self.noises) > 0]
        if weights.sum() == 0:
            return None
        kind = NOISE_KINDS[int(rng.choice(3, p=weights / weights.sum()))]
        if kind == "coloured":
            return coloured_noise(num_samples, str(rng.choice(list(COLOURS))), rng)
        if kind == "babble":
            return babble(self.speech, num_samples, int(rng.integers(self.config.babble_talkers[0], self.config.babble_talkers[1] + 1)), rng)
        recording = self.noises[int(rng.integers(len(self.noises)))]
        start = int(rng.integers(0, max(1, len(recording) - num_samples)))
        return _as_float(recording[start : start + num_samples])


def load_rir_bank(path: str | Path) -> list[np.ndarray]:
    """Impulse responses from a bank written by tools/make_rir_bank.py ("rirs" [N, L] zero-padded, "lengths" [N])."""
    with np.load(path) as bank:
        if int(bank["sample_rate"]) != SAMPLE_RATE:
            raise ValueError(f"{path}: impulse responses at {int(bank['sample_rate'])} Hz, need {SAMPLE_RATE}")
        return [rir[:length].astype(np.float32) for rir, length in zip(bank["rirs"], bank["lengths"])]


def load_noise_dirs(directories: Sequence[str]) -> list[np.ndarray]:
    """Every audio file under the directories (recursively), at 16 kHz, as int16 to halve memory."""
    files = sorted(p for d in directories for p in Path(d).rglob("*") if p.suffix.lower() in NOISE_SUFFIXES)
    if directories and not files:
        raise ValueError(f"no audio files ({', '.join(NOISE_SUFFIXES)}) under {', '.join(directories)}")
    return [to_int16(load_audio(f)) for f in files]


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1, 1) * 32767).astype(np.int16)


def _as_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 32767 if x.dtype == np.int16 else np.asarray(x, dtype=np.float32)


def _energy(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) if len(x) else 0.0


def _fit_length(x: np.ndarray, length: int) -> np.ndarray:
    return np.pad(x, (0, max(0, length - len(x))))[:length].astype(np.float32)


def _normalise_peak(x: np.ndarray, peak: float) -> np.ndarray:
    current = float(np.abs(x).max()) if len(x) else 0.0
    return (x * (peak / current)).astype(np.float32) if current > EPS else x.astype(np.float32)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))
