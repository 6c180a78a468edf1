"""Autoregressive decoders with an explicit, batched state: the attention LSTM decoder (LAS speller).

Interface shared with ``TransformerDecoder`` (``transformer_decoder.py``)::

    state = decoder.init_state(memory (B,T,Dm), memory_lengths (B,))       # a BatchState dataclass
    out = decoder.step(prev_tokens (N,), state, memory, memory_mask (N,T))  # StepOutput(logits, state, attention)
    state.index_select(idx)                                                 # reorder/expand for beams
    decoder(tokens_in (B,L), memory, memory_lengths)                        # DecoderOutput(logits, attention)

Nothing about a decoding run is kept on the module. The teacher-forced ``forward`` equals ``step`` iterated
over ``tokens_in``. With ``sampling_prob > 0`` (scheduled sampling, Bengio et al. 2015) the forward runs
step-wise and feeds back the model's own previous prediction instead of the reference token with that
probability, drawn per utterance and step from ``generator``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from speechseq.nn.attention import AttentionConfig, AttentionState, build_attention
from speechseq.nn.masking import lengths_to_mask
from speechseq.nn.state import BatchState


@dataclass
class DecoderOutput:
    """Teacher-forced decoder output: logits (B,L,V) and attention weights (B,L,T)."""

    logits: torch.Tensor
    attention: torch.Tensor


@dataclass
class StepOutput:
    """One decoding step: logits (N,V), the next state, and attention weights (N,T)."""

    logits: torch.Tensor
    state: Any
    attention: torch.Tensor


class StepDecoder(Protocol):
    """What ``run_stepwise`` (and beam search) needs from a decoder."""

    def init_state(
        self, memory: torch.Tensor, memory_lengths: torch.Tensor, generator: torch.Generator | None = None
    ) -> BatchState: ...

    def step(
        self, prev_tokens: torch.Tensor, state: Any, memory: torch.Tensor, memory_mask: torch.Tensor
    ) -> StepOutput: ...


def run_stepwise(
    decoder: StepDecoder,
    tokens_in: torch.Tensor,
    memory: torch.Tensor,
    memory_lengths: torch.Tensor,
    sampling_prob: float = 0.0,
    generator: torch.Generator | None = None,
    sample_tokens: bool = False,
) -> DecoderOutput:
    """Run ``decoder.step`` over ``tokens_in`` (B,L), optionally with scheduled sampling.

    Args:
        decoder: any decoder with ``init_state`` and ``step``.
        tokens_in: (B,L) reference inputs (``<sos>`` first).
        memory: (B,T,Dm) encoder states; memory_lengths: (B,).
        sampling_prob: probability of replacing reference token t (t >= 1) by the model's prediction at t-1.
        generator: draws the replacement decisions (and sampled tokens); None uses the global generator.
        sample_tokens: feed back a token sampled from the softmax instead of the argmax.

    Returns:
        DecoderOutput with logits (B,L,V) and attention (B,L,T).
    """
    mask = lengths_to_mask(memory_lengths, memory.size(1))
    state = decoder.init_state(memory, memory_lengths, generator=generator)
    logits, attention = [], []
    prev = tokens_in[:, 0]
    for t in range(tokens_in.size(1)):
        if t > 0:
            prev = tokens_in[:, t]
            if sampling_prob > 0:
                prev = _scheduled_tokens(prev, logits[-1].detach(), sampling_prob, generator, sample_tokens)
        out = decoder.step(prev, state, memory, mask)
        state = out.state
        logits.append(out.logits)
        attention.append(out.attention)
    return DecoderOutput(logits=torch.stack(logits, dim=1), attention=torch.stack(attention, dim=1))


def _scheduled_tokens(
    reference: torch.Tensor,
    prev_logits: torch.Tensor,
    prob: float,
    generator: torch.Generator | None,
    sample: bool,
) -> torch.Tensor:
    """Per row, the reference token (N,) or, with probability ``prob``, the model's own prediction.

    Random draws use the CPU ``generator`` (so runs repeat on any device); only sampling moves logits there.
    """
    if sample:
        probs = torch.softmax(prev_logits.float().cpu(), -1)
        predicted = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(reference.device)
    else:
        predicted = prev_logits.argmax(-1)
    use_model = torch.rand(reference.shape, generator=generator) < prob
    return torch.where(use_model.to(reference.device), predicted, reference)


@dataclass
class AttentionLSTMDecoderConfig:
    """Attention LSTM decoder (LAS speller).

    Attributes:
        embedding_dim: token embedding size.
        hidden_size: units of each LSTM cell.
        num_layers: stacked LSTM cells.
        dropout: dropout between cells and before the output layer.
        attention: the attention used (queried by the top cell's output).
    """

    embedding_dim: int = 256
    hidden_size: int = 512
    num_layers: int = 1
    dropout: float = 0.1
    attention: AttentionConfig = field(default_factory=AttentionConfig)


@dataclass
class LSTMDecoderState(BatchState):
    """hidden, cell: (N, layers, H); context: (N, Dm) last attention context (input feeding); attention state."""

    hidden: torch.Tensor
    cell: torch.Tensor
    context: torch.Tensor
    attention: AttentionState


class AttentionLSTMDecoder(nn.Module):
    """Embedding → LSTM cells fed ``[embedding, previous context]`` → attention → output MLP.

    At step i the top cell's output ``s_i`` queries the attention for ``c_i``; logits come from
    ``tanh(W [s_i; c_i])`` and ``c_i`` is also fed into the first cell at step i+1 (input feeding).

    Args:
        config: sizes and attention kind.
        vocab_size: output vocabulary V (also the embedding table size).
        memory_dim: encoder output size Dm.

    >>> dec = AttentionLSTMDecoder(AttentionLSTMDecoderConfig(embedding_dim=8, hidden_size=16,
    ...     attention=AttentionConfig(attention_dim=8, location_kernel=3, location_filters=2)), 10, 12)
    >>> out = dec(torch.tensor([[2, 5, 6]]), torch.randn(1, 7, 12), torch.tensor([7]))
    >>> tuple(out.logits.shape), tuple(out.attention.shape)
    ((1, 3, 10), (1, 3, 7))
    """

    #: ``step`` accepts memory with one row per utterance (B,T,Dm) for N = B·W hypothesis rows.
    grouped_memory = True

    def __init__(self, config: AttentionLSTMDecoderConfig, vocab_size: int, memory_dim: int):
        super().__init__()
        self.config, self.vocab_size, self.memory_dim = config, vocab_size, memory_dim
        self.embedding = nn.Embedding(vocab_size, config.embedding_dim)
        sizes = [config.embedding_dim + memory_dim] + [config.hidden_size] * config.num_layers
        self.cells = nn.ModuleList(nn.LSTMCell(sizes[i], sizes[i + 1]) for i in range(config.num_layers))
        self.attention = build_attention(config.attention, config.hidden_size, memory_dim)
        self.pre_output = nn.Linear(config.hidden_size + memory_dim, config.hidden_size)
        self.output = nn.Linear(config.hidden_size, vocab_size)
        self.dropout = nn.Dropout(config.dropout)

    def init_state(
        self, memory: torch.Tensor, memory_lengths: torch.Tensor, generator: torch.Generator | None = None
    ) -> LSTMDecoderState:
        """Zero LSTM state and context; attention state with the memory projected once."""
        batch = memory.size(0)
        zeros = memory.new_zeros(batch, self.config.num_layers, self.config.hidden_size)
        mask = lengths_to_mask(memory_lengths, memory.size(1))
        return LSTMDecoderState(
            hidden=zeros,
            cell=zeros.clone(),
            context=memory.new_zeros(batch, self.memory_dim),
            attention=self.attention.init_state(memory, mask, generator=generator),
        )

    def step(
        self, prev_tokens: torch.Tensor, state: LSTMDecoderState, memory: torch.Tensor, memory_mask: torch.Tensor
    ) -> StepOutput:
        """One step: prev_tokens (N,), memory (N,T,Dm), memory_mask (N,T) -> StepOutput (logits (N,V))."""
        x = torch.cat([self.embedding(prev_tokens), state.context], dim=-1)
        hiddens, cells = [], []
        for layer, cell in enumerate(self.cells):
            h, c = cell(x, (state.hidden[:, layer], state.cell[:, layer]))
            hiddens.append(h)
            cells.append(c)
            x = self.dropout(h)
        att = self.attention(hiddens[-1], memory, memory_mask, state.attention)
        pre = torch.tanh(self.pre_output(torch.cat([hiddens[-1], att.context], dim=-1)))
        logits = self.output(self.dropout(pre))
        new_state = LSTMDecoderState(
            hidden=torch.stack(hiddens, dim=1), cell=torch.stack(cells, dim=1), context=att.context,
            attention=att.state,
        )
        return StepOutput(logits=logits, state=new_state, attention=att.weights)

    def forward(
        self,
        tokens_in: torch.Tensor,
        memory: torch.Tensor,
        memory_lengths: torch.Tensor,
        sampling_prob: float = 0.0,
        generator: torch.Generator | None = None,
        sample_tokens: bool = False,
    ) -> DecoderOutput:
        """Teacher forcing over tokens_in (B,L): logits (B,L,V), attention (B,L,T). See ``run_stepwise``."""
        # Input feeding makes every step depend on the previous context: the forward is inherently step-wise.
        return run_stepwise(self, tokens_in, memory, memory_lengths, sampling_prob, generator, sample_tokens)
