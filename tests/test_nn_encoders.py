"""Encoders of speechseq.nn: padding invariance, exact length arithmetic, relative positions, factory."""

from __future__ import annotations

import math

import pytest
import torch

from speechseq.errors import ConfigError
from speechseq.nn.encoders import ENCODER_KINDS, build_encoder, concat_adjacent_frames, padded_bilstm
from speechseq.nn.mha import RelPositionMultiHeadAttention, sinusoidal_embedding
from speechseq.nn.subsampling import Conv1dSubsampling
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

SMALL = {
    "conv_bilstm": {"conv_channels": 16, "hidden_size": 8, "num_layers": 2},
    "pyramid_bilstm": {"hidden_size": 8, "num_bottom_layers": 1, "num_pyramid_layers": 3},
    "transformer": {"d_model": 16, "num_heads": 2, "ffn_dim": 32, "num_layers": 2, "subsampling_channels": 4},
    "conformer": {
        "d_model": 16, "num_heads": 2, "ffn_dim": 32, "num_layers": 2, "conv_kernel": 5, "subsampling_channels": 4,
    },
}
FEATURES = 12


def tiny_encoder(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_encoder({"kind": kind, "input_dim": FEATURES, **SMALL[kind]}).eval()


@pytest.mark.parametrize("kind", ENCODER_KINDS)
def test_padding_invariance_with_garbage_padding(kind: str) -> None:
    """Each utterance gives the same states alone and inside a batch whose padding is garbage."""
    encoder = tiny_encoder(kind)
    lengths = torch.tensor([41, 23, 9, 1])
    gen = torch.Generator().manual_seed(1)
    batch = 100.0 * torch.randn(4, 41, FEATURES, generator=gen)  # garbage everywhere ...
    singles = [torch.randn(1, int(n), FEATURES, generator=gen) for n in lengths]
    for b, single in enumerate(singles):  # ... except inside each length
        batch[b, : lengths[b]] = single[0]
    with torch.no_grad():
        states, out_lengths = encoder(batch, lengths)
        for b, single in enumerate(singles):
            alone, alone_length = encoder(single, lengths[b : b + 1])
            assert alone.size(1) == int(alone_length) == int(out_lengths[b])
            torch.testing.assert_close(states[b, : out_lengths[b]], alone[0], atol=1e-5, rtol=1e-4)
            assert torch.all(states[b, out_lengths[b] :] == 0)
    assert torch.equal(encoder.output_lengths(lengths), out_lengths)
    assert states.size(-1) == encoder.output_dim


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        # conv 4x: ceil(ceil(T/2)/2); pyramid 8x: three ceil-halvings.
        ("conv_bilstm", lambda t: math.ceil(math.ceil(t / 2) / 2)),
        ("transformer", lambda t: math.ceil(math.ceil(t / 2) / 2)),
        ("pyramid_bilstm", lambda t: math.ceil(math.ceil(math.ceil(t / 2) / 2) / 2)),
    ],
)
def test_output_length_arithmetic(kind: str, expected) -> None:
    encoder = tiny_encoder(kind)
    lengths = torch.arange(1, 40)
    assert encoder.output_lengths(lengths).tolist() == [expected(int(t)) for t in lengths]


def test_pyramid_pads_odd_lengths_instead_of_dropping() -> None:
    """Odd lengths: the last frame is paired with a zero frame (kept, not dropped)."""
    x = torch.arange(1.0, 1.0 + 2 * 5 * 3).view(2, 5, 3)
    lengths = torch.tensor([5, 3])
    halved, new_lengths = concat_adjacent_frames(x, lengths)
    assert new_lengths.tolist() == [3, 2]
    assert torch.equal(halved[0, 2], torch.cat([x[0, 4], torch.zeros(3)]))
    assert torch.equal(halved[1, 1], torch.cat([x[1, 2], torch.zeros(3)]))  # x[1, 3] was padding
    assert torch.equal(halved[0, 0], torch.cat([x[0, 0], x[0, 1]]))
    # The listener's last state depends on the last (odd) frame: it was not dropped.
    encoder = tiny_encoder("pyramid_bilstm")
    feats = torch.randn(1, 9, FEATURES)
    changed = feats.clone()
    changed[0, 8] += 1.0
    with torch.no_grad():
        a, _ = encoder(feats, torch.tensor([9]))
        b, _ = encoder(changed, torch.tensor([9]))
    assert not torch.allclose(a[0, -1], b[0, -1])


def test_conv_subsampling_two_times_option() -> None:
    sub = Conv1dSubsampling(FEATURES, 8, strides=(2,))
    y, lengths = sub(torch.randn(2, 11, FEATURES), torch.tensor([11, 4]))
    assert lengths.tolist() == [6, 2] and y.size(1) == 6


def test_relative_position_scores_match_direct_formula() -> None:
    """The gather-based relative shift equals (q+v)·W p(i-j) computed pair by pair."""
    torch.manual_seed(0)
    mha = RelPositionMultiHeadAttention(8, 2).eval()
    torch.nn.init.normal_(mha.position_bias)
    x = torch.randn(1, 5, 8)
    _, weights = mha(x, None)
    q = mha.project_query(x)
    k, _ = mha.project_key_value(x)
    expected = torch.empty(1, 2, 5, 5)
    for i in range(5):
        for j in range(5):
            p = mha._split(mha.pos(sinusoidal_embedding(torch.tensor([i - j]), 8)).unsqueeze(0))  # (1,H,1,dk)
            content = ((q[:, :, i] + mha.content_bias) * k[:, :, j]).sum(-1)
            position = ((q[:, :, i] + mha.position_bias) * p[:, :, 0]).sum(-1)
            expected[:, :, i, j] = (content + position) / math.sqrt(mha.head_dim)
    torch.testing.assert_close(weights, torch.softmax(expected, -1), atol=1e-6, rtol=1e-5)


def test_factory_rejects_unknown_keys_and_kinds() -> None:
    with pytest.raises(ConfigError, match="valid keys"):
        build_encoder({"kind": "conformer", "d_modle": 4})
    with pytest.raises(ConfigError, match="conv_bilstm"):
        build_encoder({"kind": "lstm"})
    with pytest.raises(ConfigError, match="kind"):
        build_encoder({"input_dim": 3})


def test_zero_length_utterance_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        tiny_encoder("conv_bilstm")(torch.randn(2, 5, FEATURES), torch.tensor([5, 0]))


@pytest.mark.parametrize("bidirectional,layers,bias", [(True, 1, True), (True, 2, True), (False, 2, True), (True, 1, False)])
def test_unpacked_cpu_bilstm_equals_the_packed_lstm_in_values_and_gradients(bidirectional, layers, bias) -> None:
    """The CPU path (one unpacked pass per direction, the backward one reversed within each length) gives
    the packed nn.LSTM's outputs and the same gradients for the inputs and every weight; padding is garbage."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(6, 5, num_layers=layers, batch_first=True, bidirectional=bidirectional, bias=bias)
    lengths = torch.tensor([9, 4, 7, 1])
    x = 50.0 * torch.randn(4, 9, 6)
    for b, n in enumerate(lengths):
        x[b, :n] = torch.randn(int(n), 6)
    grad_out = torch.randn(4, 9, 5 * (2 if bidirectional else 1))

    def run(fn):
        inputs = x.clone().requires_grad_(True)
        lstm.zero_grad()
        out = fn(inputs)
        (out * grad_out).sum().backward()
        return out.detach(), inputs.grad, [p.grad.clone() for p in lstm.parameters()]

    def packed(inputs):
        p = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(lstm(p)[0], batch_first=True, total_length=9)[0]

    out, grad_x, grads = run(lambda inputs: padded_bilstm(lstm, inputs, lengths))
    ref_out, ref_grad_x, ref_grads = run(packed)
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(grad_x, ref_grad_x, atol=1e-6, rtol=1e-5)
    for g, ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, ref, atol=1e-5, rtol=1e-4)
    assert out[1, 4:].abs().max() == 0 and grad_x[1, 4:].abs().max() == 0  # nothing from or to the padding
