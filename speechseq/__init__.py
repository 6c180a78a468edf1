"""speechseq: one encoder-decoder core for speech recognition, synthesis and translation."""

__version__ = "0.1.0"
