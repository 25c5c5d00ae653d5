"""Transcription beyond one process: `speech-s2s transcribe --ray` (ray_runner), imported only when asked for."""
