"""What a decoding run is asked to do and what it returns: options, inputs, hypotheses, results.

These are plain dataclasses shared by every searcher in :mod:`speechseq.decoding` (beam search, greedy,
CTC-only search), in the spirit of whisper's ``DecodingOptions`` / ``DecodingResult``: the searcher is
configured by one options object and returns one result per utterance, never positional tuples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from speechseq.errors import ConfigError

BLANK_ID = 0  # CTC blank, and the pad value of token tensors (docs/architecture.md)
UNK_ID = 1
EOS_ID = 2  # <sos> and <eos> are one symbol, as in ESPnet


@dataclass
class DecodingOptions:
    """Settings of one decoding run. Scores combine as ``(1−λ)·att + λ·ctc + β·lm + bonus·length``.

    Attributes:
        beam_size: running hypotheses per utterance; 1 is greedy decoding.
        ctc_weight: λ in [0, 1], weight of the CTC prefix score (1 − λ goes to the attention decoder).
        lm_weight: β ≥ 0, weight of the language model (shallow fusion).
        length_bonus: added to the score for every emitted token (eos included); > 0 favours longer outputs.
        length_normalization: rank ended hypotheses by score / length instead of score.
        max_len_ratio: output length limit as a fraction of the input frames (at least 1 token).
        min_len_ratio: eos is forbidden before this fraction of the input frames.
        eos_threshold: eos is a candidate only when its score is at least ``eos_threshold`` × the best
            token's score (both ≤ 0, so 1.5 allows eos within 1.5× of the best; SpeechBrain's rule).
            ``None`` disables the check.
        nbest: hypotheses returned per utterance (≤ beam_size).
        pre_beam_size: candidates per hypothesis that partial scorers (CTC) score, chosen by the full
            scorers; ``None`` means ``int(1.5 × beam_size)`` (ESPnet's pre-beam ratio).
        ctc_window: when set, the CTC prefix scorer only lets the new token start within this many frames
            of the attention peak, so its cost stops growing with the input length.
        max_attention_shift: a hypothesis whose attention peak moves by more than this many frames in one
            step is dropped (guards against loops and skips); ``None`` disables it.
        end_detect_steps: stop an utterance when the best hypotheses ended in each of the last this many
            steps are all ``end_detect_margin`` below the best ended one (ESPnet's ``end_detect``);
            0 disables it.
        end_detect_margin: the log-score margin of that rule (ESPnet uses 10).
        max_rows: most hypotheses (utterances × beam) searched as one tensor; a larger batch is searched in
            groups of ``max_rows // beam_size`` utterances, each cut to its own longest input. Results do
            not change; the memory of a search stays bounded for any batch size (its speed effect at
            batch 32 × beam 10 was within the machine's noise, docs/benchmarks.md). ``None`` searches every
            batch whole.
        score_beam: prune, after every step, the hypotheses whose score is more than this far below the best
            one of their utterance (Kaldi's decoding beam, flashlight's ``beamThreshold``); pruned hypotheses
            are no longer computed, so the search costs what its *live* hypotheses cost. ``None`` keeps all
            ``beam_size`` (ESPnet's and SpeechBrain's search). With pruning, each utterance starts with one
            row and ``max_rows`` counts utterances per group: its live hypotheses are a few, not ``beam_size``
            (at most ``beam_size`` × ``max_rows`` rows in the worst case).
    """

    beam_size: int = 1
    ctc_weight: float = 0.0
    lm_weight: float = 0.0
    length_bonus: float = 0.0
    length_normalization: bool = False
    max_len_ratio: float = 1.0
    min_len_ratio: float = 0.0
    eos_threshold: float | None = None
    nbest: int = 1
    pre_beam_size: int | None = None
    ctc_window: int | None = None
    max_attention_shift: int | None = None
    end_detect_steps: int = 3
    end_detect_margin: float = 10.0
    max_rows: int | None = 128
    score_beam: float | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.beam_size >= 1, "beam_size must be >= 1"),
            (0.0 <= self.ctc_weight <= 1.0, "ctc_weight must be in [0, 1]"),
            (self.lm_weight >= 0.0, "lm_weight must be >= 0"),
            (self.max_len_ratio > 0.0, "max_len_ratio must be > 0"),
            (0.0 <= self.min_len_ratio <= self.max_len_ratio, "min_len_ratio must be in [0, max_len_ratio]"),
            (1 <= self.nbest <= self.beam_size, "nbest must be in [1, beam_size]"),
            (self.eos_threshold is None or self.eos_threshold >= 1.0, "eos_threshold must be >= 1 or null"),
            (self.pre_beam_size is None or self.pre_beam_size >= 1, "pre_beam_size must be >= 1 or null"),
            (self.ctc_window is None or self.ctc_window >= 1, "ctc_window must be >= 1 or null"),
            (self.max_attention_shift is None or self.max_attention_shift >= 1, "max_attention_shift must be >= 1"),
            (self.end_detect_steps >= 0, "end_detect_steps must be >= 0"),
            (self.max_rows is None or self.max_rows >= 1, "max_rows must be >= 1 or null"),
            (self.score_beam is None or self.score_beam > 0, "score_beam must be > 0 or null"),
        ]
        for ok, message in checks:
            if not ok:
                key = message.split()[0]
                raise ConfigError(f"DecodingOptions.{message}, got {getattr(self, key)!r}")

    @property
    def candidates_per_hypothesis(self) -> int:
        """The pre-beam size K actually used (before capping at the vocabulary size)."""
        return self.pre_beam_size or max(1, int(1.5 * self.beam_size))

    def length_limits(self, input_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-utterance (min_len, max_len) in output tokens, eos included, from input frames (B,)."""
        frames = input_lengths.to(torch.float64)
        max_len = torch.clamp(torch.floor(frames * self.max_len_ratio), min=1).long()
        min_len = torch.minimum(torch.floor(frames * self.min_len_ratio).long(), max_len - 1)
        return min_len, max_len


@dataclass
class EncoderOutput:
    """What the scorers of a search are initialised from: the encoder's output for a batch.

    Attributes:
        memory: (B, T, D) encoder states (attention decoders read them); may be None for CTC-only search.
        lengths: (B,) valid frames.
        ctc_log_probs: (B, T, V) CTC log-posteriors (log-softmax), when a CTC head exists.
        rows_per_utterance: W when every utterance was repeated W times in a row (``repeat_rows``).
    """

    memory: torch.Tensor | None
    lengths: torch.Tensor
    ctc_log_probs: torch.Tensor | None = None
    rows_per_utterance: int = 1

    @classmethod
    def coerce(cls, value: object) -> "EncoderOutput":
        """``value`` itself, or any object with ``memory``, ``lengths`` (and ``ctc_log_probs``) as one,
        e.g. what ``LASModel.encode`` returns."""
        if isinstance(value, cls):
            return value
        return cls(getattr(value, "memory", None), getattr(value, "lengths"), getattr(value, "ctc_log_probs", None))

    @property
    def batch_size(self) -> int:
        return int(self.lengths.numel())

    @property
    def device(self) -> torch.device:
        return self.lengths.device

    def rows(self, start: int, stop: int) -> "EncoderOutput":
        """Utterances ``start:stop``, cut to the longest of them.

        >>> out = EncoderOutput(torch.zeros(3, 9, 2), torch.tensor([9, 4, 5])).rows(1, 3)
        >>> tuple(out.memory.shape), out.lengths.tolist()
        ((2, 5, 2), [4, 5])
        """
        lengths = self.lengths[start:stop]
        frames = int(lengths.max())

        def cut(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x[start:stop, :frames]

        return EncoderOutput(cut(self.memory), lengths, cut(self.ctc_log_probs))

    def repeat_rows(self, times: int) -> "EncoderOutput":
        """Every utterance repeated ``times`` times in a row (B·times rows: utterance-major, as beams are)."""
        if times == 1:
            return self

        def rep(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.repeat_interleave(times, dim=0)

        return EncoderOutput(rep(self.memory), rep(self.lengths), rep(self.ctc_log_probs), self.rows_per_utterance * times)


@dataclass
class Hypothesis:
    """One decoded sequence.

    Attributes:
        tokens: output token ids, without <sos>/<eos>.
        score: the ranking score: weighted total, divided by the length when length normalisation is on.
        scores: unweighted cumulative log-probability of each scorer (``{"decoder": ..., "ctc": ..., ...}``),
            eos included when the hypothesis ended with eos.
        attention: (L, T) attention weights per output step (eos step included), trimmed to the
            utterance's frames; None when no scorer has attention.
        ended: False when the hypothesis was cut at the length limit rather than ending with eos.
    """

    tokens: list[int]
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    attention: torch.Tensor | None = None
    ended: bool = True


@dataclass
class DecodingResult:
    """The N-best list of one utterance, best first.

    >>> r = DecodingResult([Hypothesis([5, 6], -1.0), Hypothesis([5], -2.0)])
    >>> r.tokens, r.score
    ([5, 6], -1.0)
    """

    hypotheses: list[Hypothesis]

    @property
    def best(self) -> Hypothesis:
        return self.hypotheses[0]

    @property
    def tokens(self) -> list[int]:
        return self.best.tokens if self.hypotheses else []

    @property
    def score(self) -> float:
        return self.best.score if self.hypotheses else -math.inf

