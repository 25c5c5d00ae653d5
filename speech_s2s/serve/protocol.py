"""What clients may send and what the server answers, apart from the network: torch-free and testable.

Two protocols share one decoder:

- `/ws`, ours: binary frames of signed 16-bit little-endian mono PCM (16 kHz unless `?rate=N`), in
  chunks of any even size; a text frame `{"eof": true}` ends the audio. The server sends text frames
  of JSON events, the schema of `speech-s2s stream --output-format jsonl`.
- `/vosk`, vosk-server's: an optional `{"config": {"sample_rate": N}}` first, then binary PCM, then
  `{"eof" : 1}`. Each message gets exactly one answer (`{"partial": ...}` or `{"text": ...}`), as
  vosk-server's clients wait for it before sending the next chunk.

A client that breaks the protocol gets a `ClientError`: the close code and reason it is sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from speech_s2s.frontend.audio import pcm16_samples

if TYPE_CHECKING:
    from speech_s2s.streaming import Event

MIN_RATE, MAX_RATE = 1000, 384_000  # sample rates a client may declare

# Close codes (RFC 6455, section 7.4.1)
NORMAL = 1000
GOING_AWAY = 1001  # server shutting down, or the connection was idle
UNSUPPORTED = 1003  # a message of a kind this endpoint does not take
INVALID_DATA = 1007  # malformed JSON, PCM of an odd number of bytes
POLICY = 1008  # unauthorized, a client too slow to read its captions
TOO_BIG = 1009
INTERNAL = 1011
TRY_LATER = 1013  # server full


class ClientError(Exception):
    """A client broke the protocol: close the connection with `code` and `reason` (≤ 123 bytes)."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason[:120]


def pcm_samples(data: bytes) -> np.ndarray:
    """Binary frame -> float32 samples in [-1, 1)."""
    if len(data) % 2:
        raise ClientError(INVALID_DATA, f"binary frame of {len(data)} bytes: 16-bit PCM needs an even number")
    return pcm16_samples(data)


def parse_rate(value: object, name: str = "rate") -> int:
    """A declared sample rate (a query parameter's text or a JSON number)."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ClientError(POLICY, f"{name} {value!r}: not a number") from None
    if not rate.is_integer() or not MIN_RATE <= rate <= MAX_RATE:
        raise ClientError(POLICY, f"{name} {value!r}: give a whole number of Hz from {MIN_RATE} to {MAX_RATE}")
    return int(rate)


def _json_object(text: str) -> dict:
    try:
        message = json.loads(text)
    except json.JSONDecodeError as error:
        raise ClientError(INVALID_DATA, f"a text frame that is not JSON ({error.msg}): audio goes in binary frames") from None
    if not isinstance(message, dict):
        raise ClientError(UNSUPPORTED, "a text frame must hold a JSON object; audio goes in binary frames")
    return message


def is_eof(text: str) -> bool:
    """`/ws`: a text frame must be `{"eof": true}`; anything else is an error."""
    message = _json_object(text)
    if set(message) == {"eof"} and message["eof"] in (True, 1):
        return True
    raise ClientError(UNSUPPORTED, f"unknown message {_keys(message)}: send audio as binary frames and {{\"eof\": true}} at the end")


@dataclass(frozen=True)
class VoskControl:
    eof: bool = False
    sample_rate: int | None = None  # a config message's rate


def vosk_control(text: str) -> VoskControl:
    """`/vosk`: `{"eof" : 1}` or `{"config": {...}}`. Of a config, only `sample_rate` changes what
    we do; vosk-server's other keys (words, max_alternatives, phrase_list...) are accepted and ignored."""
    message = _json_object(text)
    if "eof" in message:
        return VoskControl(eof=bool(message["eof"]))
    config = message.get("config")
    if isinstance(config, dict):
        rate = config.get("sample_rate")
        return VoskControl(sample_rate=None if rate is None else parse_rate(rate, "sample_rate"))
    raise ClientError(UNSUPPORTED, f"unknown message {_keys(message)}: Vosk's protocol takes config, audio and eof")


def _keys(message: dict) -> str:
    keys = ", ".join(sorted(map(str, message)))[:60]
    return "{" + keys + "}"


class VoskReplies:
    """Turns our events into vosk-server's answers: one per client message."""

    def __init__(self):
        self.partial = ""

    def answer(self, events: list[Event], eof: bool = False) -> dict:
        finals = [event.text for event in events if event.type == "final" and event.text]
        for event in events:
            self.partial = event.text if event.type == "partial" else ""
        if eof:
            self.partial = ""
        if finals or eof:
            return {"text": " ".join(finals)}
        return {"partial": self.partial}
