"""Simulate a bank of room impulse responses for `speech-s2s train --augment --rir-bank`.

Random shoebox rooms (image source method, pyroomacoustics), RT60 drawn uniformly from a range,
source and microphone placed at random inside, at least 0.5 m from walls and each other. Walls
take the absorption that Sabine's formula gives for the drawn RT60; a room too big to be that
dry is shrunk until it can be. Image sources without scattering decay slower than Sabine
predicts (measured RT60 ~1.4x the target), so a room is re-simulated up to twice with the
target scaled by target/measured. Each response is cut where its energy has decayed by 60 dB and
written into one .npz: "rirs" [N, L] float32 (zero-padded), "lengths" [N], "rt60" [N] (target),
"rt60_measured" [N] (Schroeder), "room" [N, 3] metres, "distance" [N] metres, "sample_rate".

pyroomacoustics is needed here only (pip install 'speech_s2s[augment]'); training reads the .npz.
    python tools/make_rir_bank.py --out rirs.npz --count 200 --seed 0
"""

from __future__ import annotations

import argparse

import numpy as np
from tqdm import tqdm

SAMPLE_RATE = 16000
MARGIN = 0.5  # metres between a wall and the source or microphone
ATTEMPTS, TOLERANCE = 3, 0.15  # re-simulate until the measured RT60 is within 15% of the drawn one
ROOM_RANGE = ((3.0, 10.0), (3.0, 8.0), (2.4, 4.0))  # metres: living room to lecture room


def decay_length(rir: np.ndarray, drop_db: float = 60.0) -> int:
    """Samples until the backward-integrated energy (Schroeder curve) has fallen by `drop_db`."""
    remaining = np.cumsum(np.square(rir[::-1], dtype=np.float64))[::-1]
    below = np.nonzero(remaining < remaining[0] * 10 ** (-drop_db / 10))[0]
    return int(below[0]) if len(below) else len(rir)


def simulate(rng: np.random.Generator, rt60_range: tuple[float, float]) -> dict:
    import pyroomacoustics as pra

    rt60 = rng.uniform(*rt60_range)
    room = np.array([rng.uniform(*r) for r in ROOM_RANGE])
    while True:
        try:
            pra.inverse_sabine(rt60, room)
            break
        except ValueError:  # Sabine cannot make this big a room this dry: shrink it
            room = np.maximum(room * 0.9, 2 * MARGIN + 0.6)
    while True:
        source, mic = (rng.uniform(MARGIN, room - MARGIN) for _ in range(2))
        if np.linalg.norm(source - mic) >= MARGIN:
            break
    aim = rt60
    for _ in range(ATTEMPTS):  # without scattering, image sources decay slower than Sabine says: aim lower
        absorption, max_order = pra.inverse_sabine(aim, room)
        shoebox = pra.ShoeBox(room, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=max_order)
        shoebox.add_source(source)
        shoebox.add_microphone(mic)
        shoebox.compute_rir()
        rir = np.asarray(shoebox.rir[0][0], dtype=np.float64)
        measured = float(pra.experimental.measure_rt60(rir, fs=SAMPLE_RATE))
        if abs(measured / rt60 - 1) < TOLERANCE:
            break
        try:
            pra.inverse_sabine(aim * rt60 / measured, room)
        except ValueError:  # cannot get drier in this room
            break
        aim *= rt60 / measured
    rir = rir[: decay_length(rir)]
    return {
        "rir": (rir / np.abs(rir).max()).astype(np.float32),
        "rt60": rt60,
        "rt60_measured": measured,
        "room": room,
        "distance": float(np.linalg.norm(source - mic)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rt60", type=float, nargs=2, default=(0.1, 0.9), metavar=("MIN", "MAX"), help="seconds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rooms = [simulate(rng, tuple(args.rt60)) for _ in tqdm(range(args.count), desc="rooms", unit="rir")]
    longest = max(len(r["rir"]) for r in rooms)
    np.savez_compressed(
        args.out,
        rirs=np.stack([np.pad(r["rir"], (0, longest - len(r["rir"]))) for r in rooms]),
        lengths=np.array([len(r["rir"]) for r in rooms]),
        rt60=np.array([r["rt60"] for r in rooms]),
        rt60_measured=np.array([r["rt60_measured"] for r in rooms]),
        room=np.stack([r["room"] for r in rooms]),
        distance=np.array([r["distance"] for r in rooms]),
        sample_rate=SAMPLE_RATE,
    )
    measured = np.array([r["rt60_measured"] for r in rooms])
    print(f"{args.out}: {len(rooms)} impulse responses, up to {longest / SAMPLE_RATE:.2f} s, measured RT60 {measured.min():.2f}-{measured.max():.2f} s")


if __name__ == "__main__":
    main()
