"""Packed sequences vs length-aware reversal for the bidirectional LSTM, on CPU.

Times forward + backward of one BiLSTM layer over a padded batch both ways, checks that the
outputs agree, and prints medians and the speed ratio. Example:
    python tools/bench_bilstm.py --threads 2 --batch 12 --frames 300 --hidden 224
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from speech_s2s.model.encoder import BiLSTM


def packed_forward(lstm: torch.nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=x.shape[1])
    return out


def time_it(function, repeats: int) -> float:
    timings = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        function().sum().backward()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--input", type=int, default=448)
    parser.add_argument("--hidden", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ours = BiLSTM(args.input, args.hidden)
    reference = torch.nn.LSTM(args.input, args.hidden, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(reference, name).copy_(getattr(ours.forward_lstm, name))
            getattr(reference, name + "_reverse").copy_(getattr(ours.backward_lstm, name))
    x = torch.randn(args.batch, args.frames, args.input)
    lengths = torch.linspace(args.frames // 2, args.frames, args.batch).long()
    difference = (ours(x, lengths) - packed_forward(reference, x, lengths)).abs().max().item()
    reversed_time = time_it(lambda: ours(x, lengths), args.repeats)
    packed_time = time_it(lambda: packed_forward(reference, x, lengths), args.repeats)
    print(
        f"batch {args.batch} x {args.frames} frames, {args.input}->{args.hidden}x2, threads {args.threads}: "
        f"packed {packed_time * 1000:.0f} ms, length-aware reversal {reversed_time * 1000:.0f} ms "
        f"(x{packed_time / reversed_time:.2f}), max |difference| {difference:.1e}"
    )


if __name__ == "__main__":
    main()
