"""The TTS corpus tool's parts: text sources, speaker/utterance planning, rendering, the LibriSpeech layout,
and one module per engine family, all with the interface described in :mod:`.engine`."""

from __future__ import annotations

from types import ModuleType

from . import espeak, festival, flite, kokoro, mbrola, pico, piper, rhvoice

# Order matters: speaker ids are given engine by engine in this order.
ENGINES: dict[str, ModuleType] = {m.ENGINE: m for m in (espeak, flite, festival, piper, rhvoice, mbrola, pico, kokoro)}
# What --engines selects unless told: kokoro is asked for by name, because an engine added to a corpus's
# selection re-plans its train split (engine draws and speaker ids), and corpora already made must grow as
# prefixes of themselves. The campaign makes Kokoro's speech as a corpus of its own.
OPT_IN_ENGINES: tuple[str, ...] = ("kokoro",)
DEFAULT_ENGINES: tuple[str, ...] = tuple(name for name in ENGINES if name not in OPT_IN_ENGINES)


def voices_table(engines: list[str] | None = None) -> str:
    """Every voice with its licence, as a Markdown table (for the model card)."""
    rows = ["| engine | voice | gender | accent | licence | free | packages |",
            "|---|---|---|---|---|---|---|"]
    for name, module in ENGINES.items():
        if engines is not None and name not in engines:
            continue
        for v in module.VOICES:
            rows.append(f"| {name} | {v.name} | {v.gender} | {v.accent} | {v.licence} | "
                        f"{'yes' if v.free else 'no'} | {v.packages} |")
    return "\n".join(rows) + "\n"
