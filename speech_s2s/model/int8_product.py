"""`x @ W.T` for a fixed weight W, as an int8 product: W stored int8 with a scale per output row, each
row of x quantised to int8 with its own scale at each call, the products summed exactly in int32
(`torch._int_mm`) and scaled back. For beam search's recurrent products, which multiply a few dozen
rows by the same matrix at every output character.

Each row of the result depends on that row of x alone, so a segment decodes to the same words alone
or batched with others (a live final equals the offline decoding of its segment). fbgemm's dynamic
linear (`torch.ops.quantized.linear_dynamic`), a little faster (85 us for the first product below),
quantises the whole batch with one scale: with it, the browser benchmark's finals differed from the
offline decoding of the same audio in 0.92 % of their words (2026-12-07); with rows alone, in none.

On the build machine's CPU (AVX-512 VNNI), one thread, medians of 5 x 300 calls (2026-12-07): a
[32, 320] x [320, 1280] product 115 us against 303 us in float32, a [16, 512] x [512, 2048] one 160
against 454 us; the result within 0.8 % of float32's (relative norm, rows like an LSTM's hidden state).
"""

from __future__ import annotations

import torch


class Int8Product:
    """Multiplies rows by a fixed weight [out, in] in int8; inference only (it keeps an int8 copy, so
    later changes to the weight are not seen)."""

    def __init__(self, weight: torch.Tensor):
        weight = weight.detach().float().cpu()
        self._scales = (weight.abs().amax(dim=1) / 127).clamp_min(torch.finfo(torch.float32).tiny)  # [out]
        self._weight = (weight / self._scales[:, None]).round().to(torch.int8).T.contiguous()  # [in, out]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, in] -> x @ weight.T [N, out], float32."""
        scales = (x.abs().amax(dim=1, keepdim=True) / 127).clamp_min(torch.finfo(torch.float32).tiny)  # [N, 1]
        quantised = (x / scales).round_().to(torch.int8)
        return torch._int_mm(quantised, self._weight).float().mul_(scales).mul_(self._scales)
