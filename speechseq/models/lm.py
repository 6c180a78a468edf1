"""LSTM language model over the ASR token vocabulary, for shallow fusion in beam search (``family = "lm"``).

Embedding → N-layer LSTM → linear output, optionally tied to the embedding (Press & Wolf 2017, Inan et al.
2017; a projection bridges ``hidden_size`` to ``embedding_dim`` when they differ). A sentence ``y`` is
modelled as ``<sos> y <eos>``: the input is ``<sos> y`` and the target ``y <eos>``, with the same id 2 for
both specials as every tokenizer of speechseq. The teacher-forced ``forward`` and the step-wise ``step``
compute the same distributions, so what the LM learns is what beam search fuses
(:class:`speechseq.decoding.LMScorer` wraps ``init_state`` / ``step``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

import torch
from torch import nn

from speechseq.errors import ConfigError
from speechseq.hub import PretrainedModel
from speechseq.nn.masking import lengths_to_mask
from speechseq.nn.state import BatchState

PAD_ID = 0  # also the CTC blank: never a target
SOS_EOS_ID = 2
CELL_ROWS = 128  # LM steps over at most this many rows use per-layer cell calls (see RNNLM.step)


@dataclasses.dataclass
class LMConfig:
    """Configuration of :class:`RNNLM` (``model.*`` of ``configs/lm.yaml``).

    Attributes:
        vocab_size: tokens including the specials 0-2 (set from the tokenizer by the recipe).
        embedding_dim: token embedding size.
        hidden_size: units per LSTM layer.
        num_layers: stacked LSTM layers.
        dropout: dropout on the embeddings, between layers and before the output layer (training only).
        tie_weights: share the output matrix with the embedding table.
    """

    vocab_size: int = 0
    embedding_dim: int = 512
    hidden_size: int = 512
    num_layers: int = 2
    dropout: float = 0.2
    tie_weights: bool = False


@dataclasses.dataclass
class LMState(BatchState):
    """Recurrent state, batch first: hidden and cell are (N, layers, H)."""

    hidden: torch.Tensor
    cell: torch.Tensor


@dataclasses.dataclass
class LMStepOutput:
    """One step: logits (N, V) of the next token and the state after it."""

    logits: torch.Tensor
    state: LMState


@dataclasses.dataclass
class LMOutput:
    """Teacher-forced result.

    Attributes:
        logits: (B, L+1, V) next-token logits for ``<sos> y`` (position L predicts ``<eos>``).
        loss: mean negative log-likelihood per predicted token (``<eos>`` included).
        nll_sum: summed negative log-likelihood (for corpus perplexity).
        num_tokens: predicted tokens counted in ``nll_sum`` (``sum(lengths + 1)``).
        utterance_nll: (B,) negative log-likelihood of each sentence (``<eos>`` included).
    """

    logits: torch.Tensor
    loss: torch.Tensor
    nll_sum: torch.Tensor
    num_tokens: int
    utterance_nll: torch.Tensor


def shift_for_lm(tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``<sos> y`` and targets ``y <eos>`` (both (B, L+1), padded with 0) from padded ``tokens`` (B, L).

    >>> inp, tgt = shift_for_lm(torch.tensor([[5, 6], [7, 0]]), torch.tensor([2, 1]))
    >>> inp.tolist(), tgt.tolist()
    ([[2, 5, 6], [2, 7, 0]], [[5, 6, 2], [7, 2, 0]])
    """
    batch = tokens.size(0)
    sos = tokens.new_full((batch, 1), SOS_EOS_ID)
    inputs = torch.cat([sos, tokens], dim=1)
    targets = torch.cat([tokens, tokens.new_full((batch, 1), PAD_ID)], dim=1)
    targets[torch.arange(batch, device=tokens.device), lengths.to(tokens.device)] = SOS_EOS_ID
    valid = lengths_to_mask(lengths.to(tokens.device) + 1, targets.size(1))
    return inputs.masked_fill(~valid, PAD_ID), targets.masked_fill(~valid, PAD_ID)


class RNNLM(PretrainedModel):
    """LSTM language model.

    ``forward(tokens (B,L), lengths (B,)) -> LMOutput``; ``init_state(N, device)`` and
    ``step(prev_tokens (N,), state) -> LMStepOutput`` for incremental scoring.

    >>> lm = RNNLM(LMConfig(vocab_size=10, embedding_dim=8, hidden_size=8, num_layers=1)).eval()
    >>> out = lm(torch.tensor([[5, 6, 7]]), torch.tensor([3]))
    >>> tuple(out.logits.shape), out.num_tokens
    ((1, 4, 10), 4)
    >>> step = lm.step(torch.tensor([2]), lm.init_state(1, torch.device("cpu")))
    >>> bool(torch.allclose(step.logits, out.logits[:, 0], atol=1e-6))
    True
    """

    family = "lm"
    config_class = LMConfig

    def __init__(self, config: LMConfig, feature_config: Any = None, tokenizer: Any = None) -> None:
        super().__init__(config, feature_config, tokenizer)
        if config.vocab_size <= SOS_EOS_ID:
            raise ConfigError(f"model.vocab_size must be > {SOS_EOS_ID} (specials + symbols), got {config.vocab_size}")
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.lstm = nn.LSTM(
            config.embedding_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.dropout = nn.Dropout(config.dropout)
        out_dim = config.embedding_dim if config.tie_weights else config.hidden_size
        # Tying needs the LSTM output in the embedding space: project when the sizes differ.
        self.projection = nn.Linear(config.hidden_size, out_dim) if out_dim != config.hidden_size else None
        self.output = nn.Linear(out_dim, config.vocab_size)
        if config.tie_weights:
            self.output.weight = self.embedding.weight

    def _logits(self, states: torch.Tensor) -> torch.Tensor:
        """LSTM outputs (..., H) -> logits (..., V)."""
        states = self.dropout(states)
        if self.projection is not None:
            states = self.projection(states)
        return self.output(states)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> LMOutput:
        """Teacher forcing on padded ``tokens`` (B, L) without specials, ``lengths`` (B,)."""
        inputs, targets = shift_for_lm(tokens, lengths)
        # Padding comes after every valid position and the LSTM is causal: no packing needed.
        states, _ = self.lstm(self.dropout(self.embedding(inputs)))
        logits = self._logits(states)  # (B, L+1, V)
        token_nll = nn.functional.cross_entropy(
            logits.float().transpose(1, 2), targets, ignore_index=PAD_ID, reduction="none"
        )  # (B, L+1), 0 on padding
        per_sentence = token_nll.sum(dim=1)
        nll = per_sentence.sum()
        count = int((lengths + 1).sum())
        return LMOutput(logits, nll / max(count, 1), nll, count, per_sentence)

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> LMState:
        """Zero state for ``batch_size`` sequences (before ``<sos>``)."""
        cfg = self.config
        weight = self.embedding.weight
        zeros = torch.zeros(batch_size, cfg.num_layers, cfg.hidden_size, device=device or weight.device, dtype=weight.dtype)
        return LMState(hidden=zeros, cell=zeros.clone())

    def step(self, prev_tokens: torch.Tensor, state: LMState) -> LMStepOutput:
        """Next-token logits (N, V) after ``prev_tokens`` (N,) (``<sos>`` first) and the new state."""
        x = self.dropout(self.embedding(prev_tokens))
        fused = x.size(0) > CELL_ROWS or (self.training and self.config.num_layers > 1)
        if fused or not hasattr(self.lstm, "weight_ih_l0"):  # (an INT8 LSTM keeps packed weights only)
            h0 = state.hidden.transpose(0, 1).contiguous()  # nn.LSTM wants (layers, N, H)
            c0 = state.cell.transpose(0, 1).contiguous()
            out, (h, c) = self.lstm(x.unsqueeze(1), (h0, c0))
            return LMStepOutput(self._logits(out.squeeze(1)), LMState(h.transpose(0, 1), c.transpose(0, 1)))
        # Few rows (beam search over a few utterances): one cell call per layer with the layer's own weights.
        # A one-step oneDNN LSTM costs 0.9 ms at 1 row and 1.3 ms at 10 (2 layers of 256), cells 0.16 / 0.45 ms;
        # from about 160 rows the fused layer is faster (measured, 2 threads).
        hiddens, cells = [], []
        for layer in range(self.config.num_layers):
            h, c = torch.lstm_cell(
                x,
                (state.hidden[:, layer], state.cell[:, layer]),
                getattr(self.lstm, f"weight_ih_l{layer}"),
                getattr(self.lstm, f"weight_hh_l{layer}"),
                getattr(self.lstm, f"bias_ih_l{layer}"),
                getattr(self.lstm, f"bias_hh_l{layer}"),
            )
            hiddens.append(h)
            cells.append(c)
            x = h  # eval mode: nn.LSTM applies no dropout between layers either
        state = LMState(torch.stack(hiddens, dim=1), torch.stack(cells, dim=1))
        return LMStepOutput(self._logits(x), state)


@torch.no_grad()
def perplexity(model: RNNLM, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Corpus perplexity ``exp(Σ nll / Σ tokens)`` over ``(tokens (B,L), lengths (B,))`` batches (eval mode).

    >>> lm = RNNLM(LMConfig(vocab_size=6, embedding_dim=4, hidden_size=4, num_layers=1))
    >>> 1.0 < perplexity(lm, [(torch.tensor([[3, 4]]), torch.tensor([2]))]) < 100.0
    True
    """
    was_training = model.training
    model.eval()
    nll, count = 0.0, 0
    device = model.embedding.weight.device
    for tokens, lengths in batches:
        out = model(tokens.to(device), lengths.to(device))
        nll += float(out.nll_sum)
        count += out.num_tokens
    model.train(was_training)
    return math.exp(nll / max(count, 1))
