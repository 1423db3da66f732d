"""Job-side pieces: the result-file protocol and example programs."""
