"""Log-mel features, global mean/variance normalisation and SpecAugment.

Shapes: B batch, S samples, T frames, F mel bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torchaudio
from torch import nn

from speech_s2s.frontend.audio import SAMPLE_RATE

# Floor inside the log: far below the quietest speech energy, so it only guards log(0).
LOG_FLOOR = 1e-10


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 400  # 25 ms window at 16 kHz
    hop_length: int = 160  # 10 ms hop: 100 frames per second
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = SAMPLE_RATE / 2
    # After the global normalisation, subtract each utterance's own mean per mel bin (cepstral mean
    # normalisation in the log-mel domain): a fixed channel colouring, a microphone's or a room's
    # spectral tilt, is a constant offset of log-mel and cancels. Live partials of the chunked
    # encoder use the mean of the utterance so far (causal); finals, the whole segment's.
    utterance_mean: bool = False


class LogMel(nn.Module):
    """Waveforms [B, S] -> log-mel [B, T, F], with T = 1 + S // hop per utterance.

    Matches `librosa.feature.melspectrogram` (Slaney mel scale and norm, periodic Hann, centred
    frames with zero padding, power 2) before the log. Zero padding means a padded batch gives the
    same frames for each utterance as that utterance alone.
    """

    def __init__(self, config: FeatureConfig = FeatureConfig()):
        super().__init__()
        self.config = config
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            win_length=config.n_fft,
            hop_length=config.hop_length,
            f_min=config.f_min,
            f_max=config.f_max,
            n_mels=config.n_mels,
            power=2.0,
            center=True,
            pad_mode="constant",
            norm="slaney",
            mel_scale="slaney",
        )

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        return 1 + torch.div(num_samples, self.config.hop_length, rounding_mode="floor")

    def power(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Mel power spectrogram [B, F, T'] (before the log), as librosa lays it out."""
        return self.mel(waveforms)

    @torch.no_grad()
    def forward(self, waveforms: torch.Tensor, num_samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = torch.log(self.power(waveforms).clamp_min(LOG_FLOOR)).transpose(1, 2)
        lengths = self.num_frames(num_samples)
        mask = torch.arange(feats.shape[1])[None, :] < lengths[:, None]
        return feats * mask[..., None], lengths


class StreamingLogMel:
    """Samples in, log-mel frames out, equal to `LogMel` on the whole signal (to float rounding).

    Offline frame t is the window of n_fft samples centred on sample t * hop, with zeros before
    the start and after the end (centre padding). Streaming, the start's zeros are known at once,
    so frame t is emitted as soon as the sample n_fft / 2 past its centre has arrived; the buffer
    keeps the n_fft - hop samples of overlap the next frame needs. Only the end's zeros wait for
    `flush`, which emits the last n_fft / (2 hop) frames. Output [T', F] float32 per call.
    """

    def __init__(self, logmel: LogMel):
        config = logmel.config
        self.hop, self.n_fft = config.hop_length, config.n_fft
        self.spectrogram = torchaudio.transforms.Spectrogram(
            n_fft=config.n_fft, win_length=config.n_fft, hop_length=config.hop_length, power=2.0, center=False,
        )
        self.mel_scale = logmel.mel.mel_scale  # the offline extractor's own filterbank
        self.reset()

    def reset(self) -> None:
        self._buffer = torch.zeros(self.n_fft // 2)  # the start's centre padding
        self._samples = 0  # real samples pushed
        self._frames = 0  # frames emitted

    def _frames_of(self, count: int) -> torch.Tensor:
        """Compute `count` frames from the buffer's start and drop the samples no later frame needs."""
        if count <= 0:
            return torch.zeros(0, self.mel_scale.n_mels)
        window = self._buffer[: (count - 1) * self.hop + self.n_fft]
        with torch.no_grad():
            power = self.mel_scale(self.spectrogram(window))  # [F, count]
        self._buffer = self._buffer[count * self.hop :]
        self._frames += count
        return torch.log(power.clamp_min(LOG_FLOOR)).T

    def push(self, samples: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Frames [T', F] completed by `samples` (16 kHz mono float32, numpy or torch, any length)."""
        samples = torch.as_tensor(samples, dtype=torch.float32).reshape(-1)
        self._buffer = torch.cat([self._buffer, samples])
        self._samples += len(samples)
        ready = 0 if len(self._buffer) < self.n_fft else 1 + (len(self._buffer) - self.n_fft) // self.hop
        return self._frames_of(ready)

    def flush(self) -> torch.Tensor:
        """The last frames (over the end's zero padding); then the extractor starts afresh."""
        total = 1 + self._samples // self.hop  # LogMel.num_frames of the whole signal
        self._buffer = torch.cat([self._buffer, torch.zeros(self.n_fft // 2)])
        frames = self._frames_of(total - self._frames)
        self.reset()
        return frames


class GlobalMVN(nn.Module):
    """Subtract the training set's mean and divide by its standard deviation, per mel bin; with
    `utterance_mean`, then subtract each utterance's own mean over its frames.

    The statistics are buffers, so they travel inside every checkpoint with the weights.
    """

    def __init__(self, n_mels: int, utterance_mean: bool = False):
        super().__init__()
        self.utterance_mean = utterance_mean
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("std", torch.ones(n_mels))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-5))

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None])[..., None]
        normalised = (feats - self.mean) / self.std * mask
        if self.utterance_mean:
            frames = lengths.clamp_min(1).to(normalised.dtype)[:, None, None]
            normalised = (normalised - normalised.sum(1, keepdim=True) / frames) * mask
        return normalised

    def running(self, frames: torch.Tensor, state: tuple[torch.Tensor, int] | None) -> tuple[torch.Tensor, tuple[torch.Tensor, int] | None]:
        """Frames [T, F] of one utterance as they arrive, normalised causally: the global statistics,
        then (with `utterance_mean`) the mean of the utterance's frames up to and including each
        frame. `state` carries the running sum and count from the previous call (None at the start)."""
        normalised = (frames - self.mean) / self.std
        if not self.utterance_mean or len(frames) == 0:
            return normalised, state
        total, count = state if state is not None else (torch.zeros_like(self.mean), 0)
        sums = total + normalised.cumsum(0)
        counts = count + torch.arange(1, len(frames) + 1, dtype=normalised.dtype)[:, None]
        return normalised - sums / counts, (sums[-1], count + len(frames))


@dataclass(frozen=True)
class SpecAugmentConfig:
    freq_masks: int = 2
    freq_width: int = 27  # up to 27 of 80 bins, as in LibriSpeech SpecAugment (Park et al. 2019)
    time_masks: int = 2
    time_width: int = 40  # frames
    time_width_ratio: float = 0.1  # no mask wider than this share of the utterance
    time_warp: int = 0  # max warp in frames; 0 disables


def _time_warp(feats: torch.Tensor, length: int, warp: int, generator: torch.Generator) -> torch.Tensor:
    """Move one point of the time axis by up to `warp` frames, stretching both sides linearly."""
    if length <= 2 * warp + 2:
        return feats
    centre = int(torch.randint(warp + 1, length - warp - 1, (1,), generator=generator))
    shift = int(torch.randint(-warp, warp + 1, (1,), generator=generator))
    left = torch.nn.functional.interpolate(feats[None, None, :centre], size=(centre + shift, feats.shape[1]), mode="bilinear", align_corners=False)
    right = torch.nn.functional.interpolate(feats[None, None, centre:length], size=(length - centre - shift, feats.shape[1]), mode="bilinear",
        align_corners=False)
    warped = feats.clone()
    warped[:length] = torch.cat([left[0, 0], right[0, 0]], dim=0)
    return warped


def spec_augment(feats: torch.Tensor, lengths: torch.Tensor, config: SpecAugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Mask random frequency bands and time spans of normalised features [B, T, F] (masked to 0 = the mean)."""
    out = feats.clone()
    num_bins = feats.shape[2]
    for b, length in enumerate(lengths.tolist()):
        if config.time_warp > 0:
            out[b] = _time_warp(out[b], length, config.time_warp, generator)
        for _ in range(config.freq_masks):
            width = int(torch.randint(0, config.freq_width + 1, (1,), generator=generator))
            start = int(torch.randint(0, max(1, num_bins - width), (1,), generator=generator))
            out[b, :, start : start + width] = 0.0
        max_width = min(config.time_width, int(config.time_width_ratio * length))
        for _ in range(config.time_masks):
            width = int(torch.randint(0, max_width + 1, (1,), generator=generator))
            start = int(torch.randint(0, max(1, length - width), (1,), generator=generator))
            out[b, start : start + width, :] = 0.0
    return out
