#!/usr/bin/env python3
"""Widen a model's encoder without changing what it computes, so that a fine-tune can measure capacity.

Each encoder LSTM direction grows from H to H' units. The old units keep their weights; the new
units get fresh input and recurrent weights (PyTorch's own LSTM initialisation) but every weight
*from* a new unit is zero: into the old units' gates, into the next layer, the CTC head, the
attention keys, the decoder's input and its output layer. So the widened model gives the same
outputs as the original (to float rounding) on every input, and training starts where the original
stands; the new units' outgoing weights get gradients at once, since the units' outputs are not
zero (Net2Net, Chen et al. 2016, grows networks the same way, with copies instead of zeros).

    python tools/widen_model.py --model speech_s2s/assets/model.safetensors --encoder-hidden 288 --out wide.safetensors
    speech-s2s train ... --init wide.safetensors      # the capacity run of recipes/campaign/real_voice_ablation.sh
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from speech_s2s.model.files import ModelFileError, load_model, save_model
from speech_s2s.model.seq2seq import Seq2Seq


def _output_index(old_hidden: int, new_hidden: int) -> torch.Tensor:
    """Where each of a BiLSTM layer's 2H old outputs [forward H | backward H] sits among the 2H' new ones."""
    units = torch.arange(old_hidden)
    return torch.cat([units, new_hidden + units])


def _input_index(layer_input: int, paired: bool, old_hidden: int, new_hidden: int, first: bool) -> torch.Tensor:
    """Where each old input column of an encoder layer sits among the new ones (features stay put)."""
    if first:
        return torch.arange(layer_input)
    outputs = _output_index(old_hidden, new_hidden)
    return torch.cat([outputs, 2 * new_hidden + outputs]) if paired else outputs


def _gate_rows(old_hidden: int, new_hidden: int) -> torch.Tensor:
    """Where each old gate row (input, forget, cell, output blocks of H) sits among the 4H' new rows."""
    return torch.cat([gate * new_hidden + torch.arange(old_hidden) for gate in range(4)])


def widen_encoder(model: Seq2Seq, hidden: int, seed: int = 0) -> Seq2Seq:
    """A copy of `model` with `hidden` units per encoder direction, computing the same function."""
    old = model.config.encoder.hidden_size
    if hidden < old:
        raise ValueError(f"--encoder-hidden {hidden} is narrower than the model's {old}")
    torch.manual_seed(seed)  # the new units' initial weights
    config = dataclasses.replace(model.config, encoder=dataclasses.replace(model.config.encoder, hidden_size=hidden))
    wide = Seq2Seq(config)
    wide.input_level_db = model.input_level_db
    rows = _gate_rows(old, hidden)
    with torch.no_grad():
        wide.normalizer.load_state_dict(model.normalizer.state_dict())
        for index, (narrow_layer, wide_layer) in enumerate(zip(model.encoder.layers, wide.encoder.layers, strict=True)):
            paired = index in config.encoder.reduce_before
            columns = _input_index(narrow_layer.forward_lstm.input_size, paired, old, hidden, first=index == 0)
            for direction in ("forward_lstm", "backward_lstm"):
                source, target = getattr(narrow_layer, direction), getattr(wide_layer, direction)
                target.weight_ih_l0[rows] = 0.0  # old gates read nothing from new units...
                target.weight_hh_l0[rows] = 0.0
                target.weight_ih_l0[rows[:, None], columns[None, :]] = source.weight_ih_l0  # ...and what they read before
                target.weight_hh_l0[rows[:, None], torch.arange(old)[None, :]] = source.weight_hh_l0
                target.bias_ih_l0[rows] = source.bias_ih_l0
                target.bias_hh_l0[rows] = source.bias_hh_l0
        outputs = _output_index(old, hidden)
        wide.ctc_head.weight.zero_()
        wide.ctc_head.weight[:, outputs] = model.ctc_head.weight
        wide.ctc_head.bias.copy_(model.ctc_head.bias)
        narrow_decoder = dict(model.decoder.named_parameters())
        embedding, decoder_hidden = config.decoder.embedding_size, config.decoder.hidden_size
        # the parameters that read the encoder's output, and where its columns start in each
        readers = {"cells.0.weight_ih": embedding, "attention.memory_proj.weight": 0, "output.0.weight": decoder_hidden}
        for name, parameter in wide.decoder.named_parameters():
            if name in readers:
                offset = readers[name]
                parameter.zero_()
                parameter[:, :offset] = narrow_decoder[name][:, :offset]
                parameter[:, offset + outputs] = narrow_decoder[name][:, offset:]
            else:
                parameter.copy_(narrow_decoder[name])
    return wide.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="the model to widen (.safetensors)")
    parser.add_argument("--encoder-hidden", type=int, required=True, help="units per encoder direction after widening")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0, help="for the new units' initial weights")
    args = parser.parse_args(argv)
    try:
        wide = widen_encoder(load_model(args.model), args.encoder_hidden, args.seed)
    except (ModelFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    save_model(wide, Path(args.out), info={"widened_from": str(args.model), "encoder_hidden": args.encoder_hidden})
    parameters = sum(p.numel() for p in wide.parameters())
    print(f"{args.out}: encoder {args.encoder_hidden} units per direction, {parameters / 1e6:.2f}M parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
