"""Audio in, features out: reading and resampling, log-mel, input level, voice activity."""
