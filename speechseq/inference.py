"""Recognition for users: transcribe files or arrays with any speechseq ASR model, and evaluate on a corpus.

One entry point covers both families and every decoding mode of :mod:`speechseq.decoding`:

* **CTC models** (``CTCModel``): best-path greedy decoding (``beam_size=1``, no LM), or CTC prefix beam
  search, optionally with a language model (shallow fusion);
* **attention models** (``LASModel``, any backbone): greedy (``beam_size=1``), beam search, joint
  CTC/attention (``ctc_weight`` > 0), each optionally with a language model;
* **closed-set decoding** for either family (``vocabulary=[...]``): the output is the best of a list of
  allowed transcripts (digits, commands), each scored exactly with the same weights
  (:mod:`speechseq.decoding.closed_set`).

Inputs are audio files (WAV, FLAC, ... at any rate), 1-D arrays at the model's rate, ``(array, rate)``
pairs, or ``datasets.Audio(decode=False)`` dicts; they are resampled to the model's feature rate, sorted by
length and decoded in batches (shorter padding, same results as one at a time), and the results come back
in input order.

>>> from speechseq.models import from_pretrained
>>> from speechseq.decoding import DecodingOptions
>>> model = from_pretrained("runs/las/final")                                         # doctest: +SKIP
>>> options = DecodingOptions(beam_size=8, ctc_weight=0.3, nbest=3)
>>> results = transcribe(model, ["a.wav", "b.flac"], options)                       # doctest: +SKIP
>>> results[0].text, results[0].nbest[1].text, results[0].nbest[0].scores            # doctest: +SKIP
('three seven', 'three seven one', {'decoder': -0.41, 'ctc': -0.52})
>>> evaluate(model, test_dataset, DecodingOptions(beam_size=8))                       # doctest: +SKIP
{'wer': 0.031, 'cer': 0.012, 'n': 300}
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence, Union

import numpy as np
import torch

from speechseq.audio import audio_info, load_audio, resample
from speechseq.decoding import DecodingOptions, DecodingResult, EncoderOutput, Hypothesis, build_beam_search
from speechseq.decoding import ctc_beam_search, ctc_greedy
from speechseq.decoding.closed_set import closed_set_decode
from speechseq.errors import ConfigError, SpeechSeqError, UnknownTokenError

AudioInput = Union[str, os.PathLike, np.ndarray, tuple, Mapping[str, Any]]


@dataclass
class NBestEntry:
    """One hypothesis of an N-best list.

    Attributes:
        text: the decoded text.
        tokens: its token ids (no specials).
        score: the ranking score (weighted sum of the scorers + length bonus; length-normalised if asked).
        scores: each scorer's unweighted log-probability, e.g. ``{"decoder": .., "ctc": .., "lm": ..}``.

    >>> entry = NBestEntry("yes", [5, 4, 6], -1.2, {"decoder": -1.0, "ctc": -1.7})
    >>> round(0.7 * entry.scores["decoder"] + 0.3 * entry.scores["ctc"], 2) == entry.score - 0.01
    True
    """

    text: str
    tokens: list[int]
    score: float
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class TranscriptionResult:
    """The transcript of one input.

    Attributes:
        text: best hypothesis.
        tokens: its token ids.
        score: its ranking score (CTC greedy: log-probability of the best path).
        nbest: the N-best list, best first (``nbest[0]`` is the best hypothesis).
        attention: (steps, encoder frames) attention weights of the best hypothesis, ``<eos>`` step
            included; None for CTC models.
        duration: seconds of audio.
        source: the file path, or ``"<array i>"`` for in-memory input number i.

    >>> best = NBestEntry("no", [4, 5], -0.3)
    >>> result = TranscriptionResult(best.text, best.tokens, best.score, [best], None, 0.8, "no.wav")
    >>> result.nbest[0].text == result.text
    True
    """

    text: str
    tokens: list[int]
    score: float
    nbest: list[NBestEntry]
    attention: np.ndarray | None
    duration: float
    source: str


@dataclass
class _Source:
    """One input before decoding: where it comes from, how long it is, and its rate if already decoded."""

    name: str
    audio: Any
    duration: float
    rate: int | None = None  # set for arrays; None: ``audio`` is a file path or an Audio dict


def _as_source(item: AudioInput, index: int, model_rate: int) -> _Source:
    """Describe an input without decoding files (the header gives the duration)."""
    if isinstance(item, tuple):
        if len(item) != 2:
            raise ConfigError(f"input {index}: a tuple input must be (array, sample_rate), got {len(item)} items")
        wave, rate = np.asarray(item[0], dtype=np.float32), int(item[1])
        return _Source(f"<array {index}>", wave, wave.size / rate, rate)
    if isinstance(item, np.ndarray) or torch.is_tensor(item):
        wave = np.asarray(item, dtype=np.float32)
        return _Source(f"<array {index}>", wave, wave.size / model_rate, model_rate)
    name = str(item.get("path") or f"<bytes {index}>") if isinstance(item, Mapping) else os.fspath(item)
    return _Source(name, item, audio_info(item).duration)


def _load(source: _Source, model_rate: int) -> np.ndarray:
    """(S,) float32 waveform of ``source`` at the model's rate."""
    if source.rate is None:
        return load_audio(source.audio, model_rate)
    wave = source.audio
    if wave.ndim != 1 or wave.size == 0:
        raise ConfigError(f"{source.name}: expected a non-empty 1-D waveform, got shape {wave.shape}")
    return resample(wave, source.rate, model_rate) if source.rate != model_rate else wave


def default_options(model: Any) -> DecodingOptions:
    """Greedy decoding with the model's own output-length limit (``max_decode_ratio`` of LAS models)."""
    ratio = getattr(getattr(model, "config", None), "max_decode_ratio", None)
    return DecodingOptions(max_len_ratio=ratio) if ratio else DecodingOptions()


def is_attention_model(model: Any) -> bool:
    """Attention encoder-decoders expose ``encode`` and a ``decoder``; CTC models expose neither."""
    return hasattr(model, "encode") and hasattr(model, "decoder")


def check_lm(model: Any, lm: Any) -> None:
    """Raise :class:`ConfigError` unless ``lm`` scores the same vocabulary as ``model``."""
    model_vocab, lm_vocab = model.config.vocab_size, lm.config.vocab_size
    if model_vocab != lm_vocab:
        raise ConfigError(f"the language model has {lm_vocab} tokens but the ASR model {model_vocab}: "
                          "they must share one tokenizer")
    ours, theirs = getattr(model.tokenizer, "tokens", None), getattr(getattr(lm, "tokenizer", None), "tokens", None)
    if ours is not None and theirs is not None and ours != theirs:
        diff = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b)
        raise ConfigError(f"the language model's token {diff} is {theirs[diff]!r} but the ASR model's is "
                          f"{ours[diff]!r}: they must share one tokenizer")


def load_lm(path_or_repo: str | Path, model: Any) -> Any:
    """Load a saved language model (``family = "lm"``) and check it against ``model``'s vocabulary."""
    from speechseq.models import from_pretrained

    lm = from_pretrained(path_or_repo)
    if getattr(lm, "family", None) != "lm":
        raise ConfigError(f"{path_or_repo}: holds a {getattr(lm, 'family', '?')!r} model, not a language model")
    check_lm(model, lm)
    return lm


def _ctc_best_path(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[DecodingResult]:
    """Greedy CTC results; the score is the log-probability of the best path (the sum of frame maxima)."""
    tokens = ctc_greedy(log_probs, lengths)
    best = log_probs.max(dim=-1).values.float()  # (B, T)
    valid = torch.arange(best.size(1), device=best.device).unsqueeze(0) < lengths.to(best.device).unsqueeze(1)
    scores = (best * valid).sum(dim=1).tolist()
    return [DecodingResult([Hypothesis(t, s, {"ctc": s})]) for t, s in zip(tokens, scores)]


@torch.no_grad()
def decode_batch(
    model: Any,
    wave: torch.Tensor,
    wave_lengths: torch.Tensor,
    options: DecodingOptions,
    lm: Any = None,
    precision: str = "float32",
    candidates: Sequence[Sequence[int]] | None = None,
) -> list[DecodingResult]:
    """N-best lists of a padded batch ``wave (B,S)``, ``wave_lengths (B,)`` with the search ``options`` ask for.

    ``precision="bfloat16"`` runs the networks under bf16 autocast (matrix products in bf16); CTC
    posteriors and every score stay float32. ``candidates`` (token ids of the allowed transcripts) replace
    the search with closed-set scoring (a CTC model scores them with CTC alone).
    """
    with _autocast(precision, wave.device):
        if is_attention_model(model):
            enc = model.encode(wave, wave_lengths)
            ctc = None if enc.ctc_log_probs is None else enc.ctc_log_probs.float()
            if candidates is not None:
                return closed_set_decode(model.decoder, EncoderOutput(enc.memory, enc.lengths, ctc), candidates,
                                         options, lm)
            if options.ctc_weight >= 1.0:  # the decoder weighs 0: it cannot rank the pre-beam
                options = _score_every_token(options, ctc.size(-1))
            search = build_beam_search(options, decoder=model.decoder, lm=lm)
            return search(EncoderOutput(enc.memory, enc.lengths, ctc))
        out = model(wave, wave_lengths)
        log_probs = out.log_probs.float()
        if candidates is not None:
            ctc_only = dataclasses.replace(options, ctc_weight=1.0)
            return closed_set_decode(None, EncoderOutput(None, out.lengths, log_probs), candidates, ctc_only, lm)
        if options.beam_size == 1 and lm is None:
            return _ctc_best_path(log_probs, out.lengths)
        return ctc_beam_search(log_probs, out.lengths, _score_every_token(options, log_probs.size(-1)), lm=lm)


#: Numeric precisions of inference (``transcribe(precision=...)``, ``--bf16``).
PRECISIONS = ("float32", "bfloat16")


def _autocast(precision: str, device: torch.device) -> Any:
    """bf16 autocast on ``device`` for ``precision="bfloat16"``, nothing for float32.

    Measured on this project's CPU (bf16 units, docs/benchmarks.md): beam 10 + CTC + LM 1.25x / 1.15x
    faster at batch 8 / 32, greedy 1.38x / 0.99x, same WER on the embedded test utterances timed.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "float32":
        return contextlib.nullcontext()
    if not bf16_supported(device):
        # Seen on an AVX2-only AMD EPYC: oneDNN cannot build a bf16 LSTM primitive, so every LSTM fails
        # under autocast; such a CPU has no bf16 units to gain from anyway.
        warnings.warn("bfloat16 requested, but this CPU's oneDNN has no bf16 support: decoding in float32",
                      RuntimeWarning, stacklevel=3)
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast can run this project's networks on ``device`` (CPUs need oneDNN bf16 support)."""
    if device.type != "cpu":
        return True
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return True if check is None else bool(check())


def _score_every_token(options: DecodingOptions, vocab_size: int) -> DecodingOptions:
    """``options`` whose pre-beam holds the whole vocabulary.

    BeamSearch picks the candidates the CTC prefix scorer sees by the weighted *full* scores; when no
    acoustic full scorer has weight (CTC-only search, or λ = 1) those are zeros or LM scores only, and with
    1.5 × beam < V the pre-beam would be an arbitrary or acoustically blind subset of the vocabulary.
    """
    return dataclasses.replace(options, pre_beam_size=max(vocab_size, options.pre_beam_size or 0))


def _to_result(decoded: DecodingResult, source: _Source, tokenizer: Any) -> TranscriptionResult:
    nbest = [NBestEntry(tokenizer.decode(h.tokens), list(h.tokens), float(h.score), dict(h.scores))
             for h in decoded.hypotheses]
    best = decoded.best
    attention = None if best.attention is None else best.attention.float().cpu().numpy()
    return TranscriptionResult(nbest[0].text, nbest[0].tokens, nbest[0].score, nbest, attention,
                               source.duration, source.name)


@contextlib.contextmanager
def _eval_mode(*modules: Any) -> Iterator[None]:
    """Run in eval mode (no dropout, hard MoChA), restoring each module's mode afterwards."""
    modes = [(m, m.training) for m in modules if m is not None]
    for m, _ in modes:
        m.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.train(mode)


def encode_vocabulary(tokenizer: Any, phrases: Sequence[str]) -> list[list[int]]:
    """Token ids of each allowed transcript; a clear error for an empty, repeated or unwritable phrase.

    >>> from speechseq.text import CharTokenizer
    >>> encode_vocabulary(CharTokenizer.from_texts(["yes", "no"]), ["no", "yes"])
    [[4, 5], [7, 3, 6]]
    """
    if not phrases:
        raise ConfigError("the vocabulary of closed-set decoding is empty")
    seen: set[str] = set()
    out = []
    for i, phrase in enumerate(phrases):
        if not phrase.strip():
            raise ConfigError(f"vocabulary entry {i} is empty")
        if phrase in seen:
            raise ConfigError(f"vocabulary entry {i} {phrase!r} is repeated")
        seen.add(phrase)
        try:
            out.append(tokenizer.encode(phrase))
        except UnknownTokenError as err:
            raise ConfigError(f"vocabulary entry {i} {phrase!r}: the model cannot write it ({err})") from err
    return out


def _batches(order: list[int], batch_size: int) -> Iterator[list[int]]:
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def transcribe(
    model: Any,
    inputs: Sequence[AudioInput],
    options: DecodingOptions | None = None,
    lm: Any = None,
    batch_size: int = 8,
    progress: bool = False,
    precision: str = "float32",
    vocabulary: Sequence[str] | None = None,
) -> list[TranscriptionResult]:
    """Transcribe audio with a CTC or attention ASR model.

    Args:
        model: a speechseq ASR model with a tokenizer (``CTCModel``, ``LASModel``).
        inputs: file paths (any rate; WAV/FLAC/...), 1-D arrays at the model's rate, ``(array, rate)``
            pairs, or ``{"path", "bytes"}`` Audio dicts.
        options: the search (:class:`DecodingOptions`); ``None`` is greedy with the model's length limit.
        lm: a language model for shallow fusion (``RNNLM``; weight ``options.lm_weight``), or None.
        batch_size: utterances decoded together (inputs are sorted by length first).
        progress: show a tqdm progress bar on stderr.
        precision: ``"float32"``, or ``"bfloat16"`` (autocast: faster on CPUs with bf16 units and on GPUs;
            transcripts may differ slightly).
        vocabulary: the allowed transcripts (closed-set decoding): each input's text is the best of
            them under ``options``' weights (λ, β, length bonus); ``options.nbest`` of them are returned.

    Returns:
        One :class:`TranscriptionResult` per input, in input order.

    Raises:
        AudioError: an unreadable file (named). ConfigError: no tokenizer, bad input, LM vocabulary mismatch.

    Example (an untrained CTC model: the text is noise, the mechanics are not):
        >>> import dataclasses
        >>> from speechseq.features import FeatureConfig
        >>> from speechseq.models.ctc import CTCConfig, CTCModel
        >>> from speechseq.nn.encoders import ConvBiLSTMEncoderConfig
        >>> from speechseq.text import CharTokenizer
        >>> tok = CharTokenizer.from_texts(["yes", "no"])
        >>> enc = ConvBiLSTMEncoderConfig(input_dim=40, conv_channels=16, hidden_size=8, num_layers=1)
        >>> feats = dataclasses.replace(FeatureConfig.asr_16k(), n_mels=40)
        >>> model = CTCModel(CTCConfig(vocab_size=tok.vocab_size, encoder=enc), feats, tok)
        >>> waves = [np.zeros(8000, np.float32), (np.zeros(16000, np.float32), 32000)]
        >>> results = transcribe(model, waves, DecodingOptions(beam_size=2, nbest=2))
        >>> [(r.source, r.duration, len(r.nbest)) for r in results]
        [('<array 0>', 0.5, 2), ('<array 1>', 0.5, 2)]
    """
    if getattr(model, "tokenizer", None) is None:
        raise ConfigError(f"this {type(model).__name__} has no tokenizer: it cannot produce text")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if lm is not None:
        check_lm(model, lm)
    _autocast(precision, torch.device("cpu"))  # a bad precision fails before any audio is read
    from tqdm.auto import tqdm

    from speechseq.data.collate import pad_waves

    options = options or default_options(model)
    candidates = None if vocabulary is None else encode_vocabulary(model.tokenizer, vocabulary)
    rate = model.feature_config.sample_rate
    sources = [_as_source(item, i, rate) for i, item in enumerate(inputs)]
    order = sorted(range(len(sources)), key=lambda i: -sources[i].duration)  # longest first: OOM shows early
    device = next(model.parameters()).device
    results: list[TranscriptionResult | None] = [None] * len(sources)
    with _eval_mode(model, lm), tqdm(total=len(sources), unit="utt", disable=not progress) as bar:
        for batch in _batches(order, batch_size):
            wave, lengths = pad_waves([_load(sources[i], rate) for i in batch])
            decoded = decode_batch(model, wave.to(device), lengths.to(device), options, lm, precision, candidates)
            for i, result in zip(batch, decoded):
                results[i] = _to_result(result, sources[i], model.tokenizer)
            bar.update(len(batch))
    return [r for r in results if r is not None]


def evaluate(
    model: Any,
    dataset: Any,
    options: DecodingOptions | None = None,
    lm: Any = None,
    batch_size: int = 8,
    progress: bool = False,
    normalize_references: bool = True,
    precision: str = "float32",
    vocabulary: Sequence[str] | None = None,
    by_speaker: bool = False,
) -> dict[str, Any]:
    """Corpus WER and CER of ``model`` on an ASR-view dataset (columns ``audio``, ``text``, maybe ``lang``).

    Args:
        dataset: a ``datasets.Dataset`` in the ASR view (or any sequence of such rows).
        normalize_references: pass each reference through ``speechseq.text.normalize`` in its row's
            language (what the recipes do to training transcripts), so that "10" is scored as "ten".
        precision, vocabulary: as in :func:`transcribe`.
        by_speaker: also score each value of the ``speaker`` column on its own (a voice the model
            cannot read hides in a corpus mean; rows without a speaker count as ``""``).

    Returns:
        ``{"wer": ..., "cer": ..., "n": utterances}`` (corpus-level rates, see :mod:`speechseq.metrics`),
        with ``by_speaker``: and ``"speakers": {speaker: {"wer", "cer", "n", "words"}}``, sorted by name.
    """
    from speechseq.metrics import error_rates
    from speechseq.text import normalize

    rows = list(dataset)
    if not rows:
        raise SpeechSeqError("evaluate: the dataset has no rows")
    missing = [key for key in ("audio", "text") if key not in rows[0]]
    if missing:
        raise ConfigError(f"evaluate: the dataset lacks column(s) {missing}; it must be in the ASR view")
    refs = [str(row["text"]) for row in rows]
    if normalize_references:
        refs = [normalize(text, str(row.get("lang") or "en")) for text, row in zip(refs, rows)]
    results = transcribe(model, [row["audio"] for row in rows], options, lm, batch_size, progress, precision,
                         vocabulary)
    hyps = [r.text for r in results]
    rates = error_rates(refs, hyps)
    metrics: dict[str, Any] = {"wer": rates.wer, "cer": rates.cer, "n": len(rows)}
    if by_speaker:
        groups: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            groups.setdefault(str(row.get("speaker") or ""), []).append(index)
        metrics["speakers"] = {}
        for speaker in sorted(groups):
            part = error_rates([refs[i] for i in groups[speaker]], [hyps[i] for i in groups[speaker]])
            metrics["speakers"][speaker] = {
                "wer": part.wer, "cer": part.cer, "n": len(groups[speaker]),
                "words": part.hits + part.substitutions + part.deletions,
            }
    return metrics


def plot_attention(
    result: TranscriptionResult, path: str | Path, tokenizer: Any = None, title: str | None = None
) -> Path:
    """Save the attention map of ``result`` as a PNG heatmap (output steps × encoder frames).

    With ``tokenizer`` the rows are labelled with the emitted tokens (and ``<eos>``).
    """
    if result.attention is None:
        raise ConfigError(f"{result.source}: no attention to plot (CTC models have none)")
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    steps, frames = result.attention.shape
    fig, axis = plt.subplots(figsize=(max(4.0, frames / 12), max(3.0, steps / 5)))
    image = axis.imshow(result.attention, aspect="auto", origin="lower", interpolation="none", vmin=0.0)
    if tokenizer is not None and steps <= 80:
        labels = [tokenizer.tokens[t] for t in result.tokens] + ["<eos>"]
        axis.set_yticks(range(steps), ["␣" if s == " " else s for s in labels[:steps]])
    axis.set_xlabel(f"encoder frame ({result.duration:.2f} s of audio)")
    axis.set_ylabel("output step")
    axis.set_title(title or f"{Path(result.source).name}: {result.text}")
    fig.colorbar(image, ax=axis)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
