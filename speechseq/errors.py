"""Exceptions raised on bad input. Each names the file, key or utterance at fault."""

from __future__ import annotations


class SpeechSeqError(Exception):
    """Base class of every error speechseq raises on bad input."""


class AudioError(SpeechSeqError):
    """Audio that cannot be used: unreadable, empty, silent, not audio, or too long.

    >>> str(AudioError("a.wav", "empty file"))
    'a.wav: empty file'
    """

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnknownTokenError(SpeechSeqError, ValueError):
    """A transcript holds characters (or symbols) that the tokenizer does not know."""

    def __init__(self, symbols: list[str], text: str) -> None:
        self.symbols = symbols
        self.text = text
        shown = ", ".join(repr(s) for s in symbols)
        super().__init__(f"unknown symbol(s) {shown} in text {text!r}")


class ConfigError(SpeechSeqError, ValueError):
    """A configuration key that does not exist, or a value of the wrong type."""
