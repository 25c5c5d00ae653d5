"""Scoring (WER/CER), error reports and whole-corpus decoding for published-style results."""
