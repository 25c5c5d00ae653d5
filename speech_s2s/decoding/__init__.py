"""From encoder output to text: decoding options, greedy and beam search, CTC prefix scores, language models, fusion, alignment."""
