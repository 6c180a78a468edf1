"""Streaming recognition: partial transcripts while audio arrives, for MoChA LAS models and CTC models.

What is streamed, honestly
--------------------------
Every encoder of speechseq today is bidirectional (BiLSTM listener, ConvBiLSTM, self-attention) and the
features are normalised per utterance, so an encoder state depends on *all* the audio, future included: no
encoder state can be computed once and kept. The recogniser therefore, at every update (each
``chunk_seconds`` of new audio):

1. **re-runs the front end and the encoder on all audio received so far**. The cost of a stream grows with
   the square of its length: fine for utterances up to ~20 s with small models. With a causal encoder
   (unidirectional listener and running feature normalisation, which speechseq does not have yet) past
   encoder frames would never change and the same loop would be exact (see "Bound" below);
2. treats the last ``lookahead_seconds`` of encoder frames as **unsettled** (they lack right context) and
   cuts them off: the decoder never sees them;
3. decodes greedily over the settled frames:

   * **MoChA LAS**: the hard monotonic head scans frames left to right from its previous position and stops
     at the first frame whose monotonic energy is positive; its context is a chunk of frames *ending* there.
     A step thus depends only on frames up to the one it selects, and decoding a prefix of the memory gives
     the same steps as decoding all of it until the head would have to move past the prefix
     (:func:`monotonic_greedy`). Decoding stops at the first step whose head finds no frame in the settled
     memory (that step is discarded: it waits for audio), so the head never attends beyond received frames;
   * **CTC**: the per-frame argmax labels of the settled frames;
4. **commits** what the last ``agreement`` hypotheses agree on (LocalAgreement-n, Polák et al. 2022): the
   ``stable_text``. Committed units (tokens; CTC: frame labels) are never retracted: every later decode is
   forced through them, so a stable text is a prefix of every later text and of the final one;
5. on :meth:`StreamingRecognizer.finish`, encodes the complete audio and decodes to the end (MoChA: until
   ``<eos>`` within the offline step limit, the head free to use every frame), forced through the commits.

Bound
-----
The final transcript equals offline greedy decoding (``model.transcribe``) exactly when the committed units
are a prefix of the offline greedy output: the last pass sees the same audio, model and step limit. With a
bidirectional encoder a commit can be wrong when ``agreement`` consecutive partial hypotheses agree on a token
that the full-context model would not choose (a model that encodes a whole word into its first frames
guesses from truncated audio); larger ``lookahead_seconds`` / ``agreement`` make that rarer at the price of
latency. With an encoder whose past frames never change, commits are always right and the equality is exact.

Example:
    >>> import numpy as np
    >>> from speechseq.models import from_pretrained
    >>> model = from_pretrained("runs/las_mocha/final")                      # doctest: +SKIP
    >>> recognizer = StreamingRecognizer(model, chunk_seconds=0.4)           # doctest: +SKIP
    >>> for chunk in np.array_split(wave, 10):                               # doctest: +SKIP
    ...     partial = recognizer.feed(chunk)
    ...     print(partial.stable_text, "|", partial.text[len(partial.stable_text):])
    >>> recognizer.finish()                                                  # doctest: +SKIP
    'three seven one'
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from speechseq.errors import ConfigError

BLANK_ID = 0
SOS_EOS_ID = 2


@dataclass
class PartialResult:
    """What the recogniser knows after one :meth:`StreamingRecognizer.feed` call.

    Attributes:
        text: the current hypothesis: ``stable_text`` followed by tentative tokens that may still change.
        stable_text: the committed prefix; never retracted, a prefix of every later ``text``.
        latency_ms: wall-clock milliseconds this call spent (near 0 when it only buffered audio).
        audio_seconds: audio received so far.
        settled_seconds: audio covered by the settled encoder frames the hypothesis was decoded from.
        updated: whether this call ran the model (False: not enough new audio since the last update).

    >>> p = PartialResult("three se", "three", 12.0, 1.2, 1.0, updated=True)
    >>> p.text[len(p.stable_text):]   # the tentative part
    ' se'
    """

    text: str
    stable_text: str
    latency_ms: float
    audio_seconds: float
    settled_seconds: float = 0.0
    updated: bool = False


@dataclass
class StreamTrace:
    """Everything one simulated stream produced (:meth:`StreamingRecognizer.run`).

    Attributes:
        partials: one entry per ``feed`` call.
        final_text: the transcript returned by ``finish``.
        final_latency_ms: time ``finish`` spent (decoding the complete audio).
        committed: the units committed before ``finish`` (tokens; for CTC, frame labels): the final
            transcript equals offline greedy decoding when they are a prefix of the offline units.

    >>> StreamTrace([PartialResult("a", "", 9.5, 0.4, 0.2, True), PartialResult("a", "", 0.0, 0.5)]).update_latencies_ms
    [9.5]
    """

    partials: list[PartialResult] = field(default_factory=list)
    final_text: str = ""
    final_latency_ms: float = 0.0
    committed: list[int] = field(default_factory=list)

    @property
    def update_latencies_ms(self) -> list[float]:
        """Latency of every feed call that ran the model."""
        return [p.latency_ms for p in self.partials if p.updated]


@dataclass
class DecodedUnits:
    """One decoding pass: ``units`` (tokens, or CTC frame labels) and the audio seconds they cover.

    >>> DecodedUnits([0, 5, 5, 0], 0.16).units
    [0, 5, 5, 0]
    """

    units: list[int]
    settled_seconds: float


class _Backend(Protocol):
    """The model-specific part of streaming."""

    def decode(self, wave: torch.Tensor, forced: list[int], lookahead_s: float, final: bool) -> DecodedUnits:
        """Units from ``wave`` (1, S), forced through ``forced``; only settled frames unless ``final``."""
        ...

    def text(self, units: list[int]) -> str:
        """Transcript of ``units``."""
        ...


def settled_frames(frames: int, audio_seconds: float, lookahead_s: float) -> int:
    """Encoder frames at least ``lookahead_s`` before the end of ``audio_seconds`` of audio.

    >>> settled_frames(25, 1.0, 0.1)   # 40 ms frames: the last 3 are unsettled
    22
    """
    frame_s = audio_seconds / max(frames, 1)
    return max(0, frames - math.ceil(lookahead_s / frame_s - 1e-9))


@torch.no_grad()
def monotonic_greedy(
    decoder: Any, memory: torch.Tensor, forced: list[int], max_steps: int, stop_at_edge: bool
) -> list[int]:
    """Greedy decoding of one utterance over the memory available so far, forced through ``forced``.

    Args:
        decoder: a decoder with ``init_state`` / ``step`` (``speechseq.nn``) whose attention is hard MoChA.
        memory: (1, T, D) encoder states the head may attend (already cut to the settled frames).
        forced: tokens emitted first whatever the argmax says (the committed prefix).
        max_steps: step limit, ``<eos>`` included, as in offline greedy decoding.
        stop_at_edge: stop before the first free step whose head selects no frame (its monotonic energies
            are negative from its position to the end of ``memory``: it waits for frames not received yet),
            and at ``<eos>``. When False (the final pass) this is ``LASModel.greedy_decode`` forced through
            ``forced``: a step without a frame gets a zero context, as offline.

    Returns:
        Token ids, without ``<eos>``.
    """
    if memory.size(1) == 0:
        return list(forced)
    device = memory.device
    mask = torch.ones(1, memory.size(1), dtype=torch.bool, device=device)
    state = decoder.init_state(memory, torch.tensor([memory.size(1)], device=device))
    prev = torch.full((1,), SOS_EOS_ID, dtype=torch.long, device=device)
    tokens: list[int] = []
    for step in range(max(max_steps, len(forced))):
        out = decoder.step(prev, state, memory, mask)
        if step < len(forced):
            token = forced[step]
        else:
            # A hard head that selected no frame returns all-zero weights: the step saw no audio.
            if stop_at_edge and not bool(out.attention.abs().sum() > 0):
                break
            token = int(out.logits.argmax(-1))
            if token == SOS_EOS_ID:
                break
        tokens.append(token)
        state, prev = out.state, torch.full_like(prev, token)
    return tokens


def collapse_ctc(labels: list[int], blank: int = BLANK_ID) -> list[int]:
    """CTC best-path collapse: merge repeated labels, drop blanks. A prefix collapses to a prefix.

    >>> collapse_ctc([0, 5, 5, 0, 5, 6, 6, 0])
    [5, 5, 6]
    """
    out, last = [], None
    for label in labels:
        if label != last and label != blank:
            out.append(label)
        last = label
    return out


class _MonotonicBackend:
    """Greedy decoding of a LAS model whose speller uses hard MoChA attention."""

    def __init__(self, model: Any) -> None:
        config = model.config
        kind = config.speller.attention.kind if config.backbone == "rnn" else f"{config.backbone} backbone"
        if kind != "mocha":
            raise ConfigError(
                "streaming an attention model needs backbone 'rnn' with model.speller.attention.kind='mocha'; "
                f"this model has {kind!r}, whose attention reads every frame, future ones included"
            )
        if not config.speller.attention.hard_inference:
            raise ConfigError("streaming needs model.speller.attention.hard_inference=true (a hard monotonic head)")
        if config.trim_db is not None:
            # Its end point moves as audio arrives, and so would every encoder frame's time.
            raise ConfigError("streaming needs model.trim_db=null: trimming the end of audio still arriving")
        self.model = model

    def decode(self, wave: torch.Tensor, forced: list[int], lookahead_s: float, final: bool) -> DecodedUnits:
        seconds = wave.size(1) / self.model.feature_config.sample_rate
        enc = self.model.encode(wave, torch.tensor([wave.size(1)], device=wave.device))
        frames = int(enc.lengths[0])
        usable = frames if final else settled_frames(frames, seconds, lookahead_s)
        # LASModel.greedy_decode's limit for the audio so far (a partial pass cut by it is still a prefix).
        steps = math.ceil(self.model.config.max_decode_ratio * frames) + 5
        tokens = monotonic_greedy(self.model.decoder, enc.memory[:, :usable], forced, steps, stop_at_edge=not final)
        return DecodedUnits(tokens, seconds * usable / max(frames, 1))

    def text(self, units: list[int]) -> str:
        return self.model.tokenizer.decode(units)


class _CTCBackend:
    """Best-path decoding of a CTC model: the argmax label of every settled frame."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def decode(self, wave: torch.Tensor, forced: list[int], lookahead_s: float, final: bool) -> DecodedUnits:
        seconds = wave.size(1) / self.model.feature_config.sample_rate
        out = self.model(wave, torch.tensor([wave.size(1)], device=wave.device))
        frames = int(out.lengths[0])
        usable = frames if final else settled_frames(frames, seconds, lookahead_s)
        labels = out.log_probs[0, :usable].argmax(-1).tolist()
        return DecodedUnits(list(forced) + labels[len(forced) :], seconds * usable / max(frames, 1))

    def text(self, units: list[int]) -> str:
        return self.model.tokenizer.decode(collapse_ctc(units))


def backend_for(model: Any) -> _Backend:
    """The streaming backend of ``model``: attention models have ``encode`` and a ``decoder``, CTC models not."""
    if getattr(model, "tokenizer", None) is None:
        raise ConfigError(f"this {type(model).__name__} has no tokenizer: it cannot produce text")
    if hasattr(model, "encode") and hasattr(model, "decoder"):
        return _MonotonicBackend(model)
    return _CTCBackend(model)


def _agreed_prefix(hypotheses: list[list[int]]) -> list[int]:
    """Longest common prefix of all ``hypotheses``."""
    first = hypotheses[0]
    n = 0
    while n < len(first) and all(len(h) > n and h[n] == first[n] for h in hypotheses[1:]):
        n += 1
    return first[:n]


@dataclass
class _Stream:
    """Per-stream state: received audio and what was decided (the model holds nothing)."""

    chunks: list[np.ndarray] = field(default_factory=list)
    samples: int = 0
    decoded_samples: int = 0
    committed: list[int] = field(default_factory=list)
    recent: list[list[int]] = field(default_factory=list)
    last: PartialResult = field(default_factory=lambda: PartialResult("", "", 0.0, 0.0))


class StreamingRecognizer:
    """One audio stream: ``feed`` chunks as they arrive, read partial transcripts, ``finish`` for the final one.

    The model is shared and never modified; the recogniser keeps only this stream's audio and commits, so
    one model can serve many recognisers. The module docstring says what is streamed and bounds the final
    transcript against offline greedy decoding.

    Args:
        model: a LAS model with hard MoChA attention (``speller.attention.kind='mocha'``) or a CTC model, with
            a tokenizer, in eval mode.
        chunk_seconds: the model runs once per this much new audio (smaller: more updates, more compute).
        lookahead_seconds: encoder frames this close to the end of the received audio are not decoded yet.
        agreement: consecutive hypotheses that must agree on a prefix before it is committed (>= 2).
        sample_rate: rate of the fed audio (default: the model's); other rates are resampled chunk by chunk.

    Example (an untrained CTC model on noise: the text is noise, the guarantees are not):
        >>> import dataclasses
        >>> from speechseq.features import FeatureConfig
        >>> from speechseq.models.ctc import CTCConfig, CTCModel
        >>> from speechseq.nn.encoders import ConvBiLSTMEncoderConfig
        >>> from speechseq.text import CharTokenizer
        >>> tok = CharTokenizer.from_texts(["yes", "no"])
        >>> enc = ConvBiLSTMEncoderConfig(input_dim=40, conv_channels=16, hidden_size=8, num_layers=1)
        >>> feats = dataclasses.replace(FeatureConfig.asr_16k(), n_mels=40)
        >>> model = CTCModel(CTCConfig(vocab_size=tok.vocab_size, encoder=enc), feats, tok).eval()
        >>> recognizer = StreamingRecognizer(model, chunk_seconds=0.25)
        >>> trace = recognizer.run(np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1)
        >>> len(trace.update_latencies_ms), all(trace.final_text.startswith(p.stable_text) for p in trace.partials)
        (4, True)
    """

    def __init__(
        self,
        model: Any,
        chunk_seconds: float = 0.4,
        lookahead_seconds: float = 0.2,
        agreement: int = 2,
        sample_rate: int | None = None,
    ) -> None:
        if chunk_seconds <= 0 or lookahead_seconds < 0 or agreement < 2:
            raise ConfigError(
                "StreamingRecognizer needs chunk_seconds > 0, lookahead_seconds >= 0 and agreement >= 2, got "
                f"{chunk_seconds}, {lookahead_seconds}, {agreement}"
            )
        if model.training:
            raise ConfigError("StreamingRecognizer needs the model in eval mode (call model.eval())")
        self.model, self.backend = model, backend_for(model)
        self.rate = model.feature_config.sample_rate
        self.input_rate = sample_rate or self.rate
        self.chunk_samples = max(1, round(chunk_seconds * self.rate))
        self.min_samples = model.feature_config.n_fft + 1  # the front end reflects half a window at each end
        self.lookahead_seconds, self.agreement = lookahead_seconds, agreement
        self._stream = _Stream()

    def _wave(self) -> torch.Tensor:
        """(1, S) all audio received so far, on the model's device."""
        device = next(self.model.parameters()).device
        return torch.from_numpy(np.concatenate(self._stream.chunks)).to(device).unsqueeze(0)

    def _append(self, chunk: np.ndarray) -> None:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if self.input_rate != self.rate and chunk.size:
            from speechseq.audio import resample

            chunk = resample(chunk, self.input_rate, self.rate)
        self._stream.chunks.append(chunk)
        self._stream.samples += chunk.size

    def feed(self, chunk: np.ndarray) -> PartialResult:
        """Append ``chunk`` (1-D float audio at ``sample_rate``) and decode when ``chunk_seconds`` of new audio
        arrived since the last update. Returns the current partial result."""
        start = time.perf_counter()
        self._append(chunk)
        s = self._stream
        seconds = s.samples / self.rate
        if s.samples - s.decoded_samples < self.chunk_samples or s.samples < self.min_samples:
            s.last = PartialResult(s.last.text, s.last.stable_text, 0.0, seconds, s.last.settled_seconds)
            return s.last
        with torch.no_grad():
            decoded = self.backend.decode(self._wave(), s.committed, self.lookahead_seconds, final=False)
        s.recent = (s.recent + [decoded.units])[-self.agreement :]
        if len(s.recent) == self.agreement:
            agreed = _agreed_prefix(s.recent)  # every hypothesis starts with the commits: never shorter
            s.committed = agreed if len(agreed) > len(s.committed) else s.committed
        s.decoded_samples = s.samples
        latency = (time.perf_counter() - start) * 1000.0
        text, stable = self.backend.text(decoded.units), self.backend.text(s.committed)
        s.last = PartialResult(text, stable, latency, seconds, decoded.settled_seconds, updated=True)
        return s.last

    def finish(self) -> str:
        """Decode the complete audio forced through the commits, start a new stream, return the final text."""
        s = self._stream
        if s.samples < self.min_samples:
            text = self.backend.text(s.committed)
        else:
            with torch.no_grad():
                text = self.backend.text(self.backend.decode(self._wave(), s.committed, 0.0, final=True).units)
        self._stream = _Stream()
        return text

    def run(self, wave: np.ndarray, feed_seconds: float | None = None) -> StreamTrace:
        """Simulate a live stream: feed ``wave`` (at ``sample_rate``) in pieces of ``feed_seconds`` (default
        ``chunk_seconds``), then finish. Returns every partial result and the final text."""
        piece = max(1, round((feed_seconds or self.chunk_samples / self.rate) * self.input_rate))
        trace = StreamTrace()
        for begin in range(0, len(wave), piece):
            trace.partials.append(self.feed(wave[begin : begin + piece]))
        trace.committed = list(self._stream.committed)
        start = time.perf_counter()
        trace.final_text = self.finish()
        trace.final_latency_ms = (time.perf_counter() - start) * 1000.0
        return trace
