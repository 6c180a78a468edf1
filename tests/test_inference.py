"""speechseq.inference and the transcribe/evaluate commands, on tiny models overfit to real FSDD speech.

The decoding results are checked against the searches of speechseq.decoding run directly on one utterance
at a time (so batching, sorting by length and restoring the order are checked too), and the CLI against the
Python API on files written at 8 kHz (WAV) and 44.1 kHz (FLAC) from a freshly saved model.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_las import FILES, MELS, WORDS, tiny_rnn_las

from speechseq.audio import load_audio, resample, save_audio
from speechseq.commands_asr import main as asr_main
from speechseq.data.collate import pad_tokens, pad_waves
from speechseq.data.readers import asr_dataset
from speechseq.decoding import DecodingOptions, EncoderOutput, build_beam_search, ctc_beam_search
from speechseq.errors import AudioError, ConfigError
from speechseq.features import FeatureConfig
from speechseq.inference import evaluate, plot_attention, transcribe
from speechseq.metrics import error_rates
from speechseq.models.ctc import CTCConfig, CTCModel, ctc_greedy
from speechseq.models.las import LASModel
from speechseq.models.lm import LMConfig, RNNLM
from speechseq.nn.encoders import ConvBiLSTMEncoderConfig
from speechseq.text import CharTokenizer

RATE = 16000
OTHERS = ["4_george_1", "9_lucas_2", "6_nicolas_3"]  # not trained on
OTHER_WORDS = ["four", "nine", "six"]


def overfit(
    model: torch.nn.Module, batch: tuple, waves: list[np.ndarray], max_steps: int = 300, extra_steps: int = 0
) -> torch.nn.Module:
    """Full-batch Adam until ``model`` transcribes the five training recordings exactly, then ``extra_steps``
    more (decisions with a margin); returned in eval mode."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def step() -> None:
        model.train()
        loss = model(*batch).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    for i in range(max_steps):
        step()
        if i % 20 == 19 and model.eval().transcribe(waves) == WORDS:
            break
    for _ in range(extra_steps):
        step()
    assert model.eval().transcribe(waves) == WORDS
    return model


def tiny_ctc(tokenizer: CharTokenizer) -> CTCModel:
    """A 2×-subsampling ConvBiLSTM CTC model small enough to overfit five recordings in seconds."""
    torch.manual_seed(0)
    encoder = ConvBiLSTMEncoderConfig(input_dim=MELS, conv_channels=32, conv_strides=(2,), hidden_size=32,
                                      num_layers=1, dropout=0.0)
    config = CTCConfig(vocab_size=tokenizer.vocab_size, encoder=encoder, use_specaugment=False, dropout=0.0)
    return CTCModel(config, dataclasses.replace(FeatureConfig.asr_16k(), n_mels=MELS), tokenizer)


def training_batch(waves: list[np.ndarray], tokenizer: CharTokenizer) -> tuple:
    wave, wave_lengths = pad_waves(waves)
    tokens, token_lengths = pad_tokens([tokenizer.encode(w) for w in WORDS])
    return wave, wave_lengths, tokens, token_lengths


@pytest.fixture(scope="module")
def data(fsdd_dir: Path):
    waves = [load_audio(fsdd_dir / f"{name}.wav", RATE) for name in FILES]
    tokenizer = CharTokenizer.from_texts(WORDS + OTHER_WORDS)  # the evaluation words are spellable
    return waves, tokenizer, training_batch(waves, tokenizer)


@pytest.fixture(scope="module")
def las(data) -> LASModel:
    waves, tokenizer, batch = data
    return overfit(tiny_rnn_las(tokenizer, "location"), batch, waves)


@pytest.fixture(scope="module")
def ctc(data) -> CTCModel:
    waves, tokenizer, batch = data
    return overfit(tiny_ctc(tokenizer), batch, waves)


def encode_one(model: LASModel, wave: np.ndarray):
    with torch.no_grad():
        return model.encode(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))


def test_every_input_form_gives_the_models_greedy_transcript(las, data, fsdd_dir: Path) -> None:
    waves = data[0]
    paths = [fsdd_dir / f"{name}.wav" for name in FILES]  # 8 kHz files, resampled on load
    raw = [load_audio(p) for p in paths]
    forms = {
        "paths": paths,
        "arrays": waves,
        "pairs": [(w, 8000) for w in raw],
        "dicts": [{"path": str(p), "bytes": p.read_bytes()} for p in paths],
    }
    for name, inputs in forms.items():
        results = transcribe(las, inputs, batch_size=2)
        assert [r.text for r in results] == WORDS, name
    one_by_one = transcribe(las, waves, batch_size=1)
    batched = transcribe(las, waves, batch_size=5)
    for a, b, wave in zip(one_by_one, batched, waves):
        assert a.tokens == b.tokens and a.score == pytest.approx(b.score, abs=1e-4)
        assert a.duration == pytest.approx(len(wave) / RATE)
        assert a.attention.shape == (len(a.tokens) + 1, int(encode_one(las, wave).lengths[0]))
        np.testing.assert_allclose(a.attention.sum(-1), 1.0, atol=1e-5)  # location attention is a distribution
    assert [r.source for r in transcribe(las, paths[:2])] == [str(p) for p in paths[:2]]


def test_joint_ctc_attention_beam_equals_the_search_on_each_utterance(las, data) -> None:
    waves = data[0] + [np.ascontiguousarray(data[0][0][:6000])]  # a truncated one: a less certain output
    options = DecodingOptions(beam_size=4, ctc_weight=0.3, nbest=3)
    results = transcribe(las, waves, options, batch_size=3)
    for result, wave in zip(results, waves):
        enc = encode_one(las, wave)
        search = build_beam_search(options, decoder=las.decoder)
        reference = search(EncoderOutput(enc.memory, enc.lengths, enc.ctc_log_probs))[0]
        assert [n.tokens for n in result.nbest] == [h.tokens for h in reference.hypotheses]
        for entry, hyp in zip(result.nbest, reference.hypotheses):
            assert entry.score == pytest.approx(hyp.score, abs=1e-4)
            assert entry.text == las.tokenizer.decode(hyp.tokens)
            assert entry.score == pytest.approx(0.7 * entry.scores["decoder"] + 0.3 * entry.scores["ctc"], abs=1e-4)
    assert [r.text for r in results[:5]] == WORDS


def test_ctc_weight_one_is_prefix_search_over_the_ctc_head(las, data) -> None:
    """λ = 1 leaves the decoder without weight: the search must still consider every token (pre-beam)."""
    options = DecodingOptions(beam_size=3, ctc_weight=1.0, max_len_ratio=las.config.max_decode_ratio)
    every_token = dataclasses.replace(options, pre_beam_size=las.config.vocab_size)
    for result, wave in zip(transcribe(las, data[0], options), data[0]):
        enc = encode_one(las, wave)
        reference = ctc_beam_search(enc.ctc_log_probs, enc.lengths, every_token)[0]
        assert result.tokens == reference.tokens
        assert result.score == pytest.approx(reference.score, abs=1e-4)
        assert result.score == pytest.approx(result.nbest[0].scores["ctc"], abs=1e-4)


def test_shallow_fusion_adds_the_weighted_lm_score(las, data) -> None:
    torch.manual_seed(1)
    lm = RNNLM(LMConfig(vocab_size=las.config.vocab_size, embedding_dim=8, hidden_size=16, num_layers=1)).eval()
    options = DecodingOptions(beam_size=3, ctc_weight=0.2, lm_weight=0.4, nbest=2)
    for result in transcribe(las, data[0][:2], options, lm=lm):
        for entry in result.nbest:
            s = entry.scores
            assert entry.score == pytest.approx(0.8 * s["decoder"] + 0.2 * s["ctc"] + 0.4 * s["lm"], abs=1e-4)
    wrong = RNNLM(LMConfig(vocab_size=las.config.vocab_size + 1, embedding_dim=4, hidden_size=4, num_layers=1))
    with pytest.raises(ConfigError, match="share one tokenizer"):
        transcribe(las, data[0][:1], options, lm=wrong)


def test_ctc_greedy_and_prefix_beam_search(ctc, data) -> None:
    waves = data[0]
    greedy = transcribe(ctc, waves, batch_size=2)
    assert [r.text for r in greedy] == ctc.transcribe(waves) == WORDS
    options = DecodingOptions(beam_size=6, nbest=2)
    beams = transcribe(ctc, waves, options, batch_size=2)
    for g, b, wave in zip(greedy, beams, waves):
        with torch.no_grad():
            out = ctc(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
        assert g.tokens == ctc_greedy(out.log_probs, out.lengths)[0]
        assert g.score == pytest.approx(float(out.log_probs[0].max(-1).values.sum()), abs=1e-4)  # best path
        every_token = dataclasses.replace(options, pre_beam_size=ctc.config.vocab_size)
        reference = ctc_beam_search(out.log_probs, out.lengths, every_token)[0]
        assert [n.tokens for n in b.nbest] == [h.tokens for h in reference.hypotheses]
        assert b.score == pytest.approx(reference.score, abs=1e-4)
        assert b.score >= g.score - 1e-4  # a prefix sums every path of the best path's labels
        assert g.attention is None
    with pytest.raises(ConfigError, match="no attention"):
        plot_attention(greedy[0], "unused.png")


def test_evaluate_scores_the_transcripts_with_jiwer(ctc, las, data, fsdd_dir: Path) -> None:
    names, words = FILES + OTHERS, WORDS + OTHER_WORDS
    paths = [fsdd_dir / f"{n}.wav" for n in names]
    dataset = asr_dataset({
        "id": names, "audio": [{"path": str(p), "bytes": None} for p in paths], "text": [w.upper() for w in words],
        "duration": [0.0] * len(names), "speaker": [""] * len(names), "lang": ["en"] * len(names),
    })
    for model in (ctc, las):
        metrics = evaluate(model, dataset, batch_size=3)
        hyps = model.transcribe([load_audio(p, RATE) for p in paths])
        expected = error_rates(words, hyps)  # references are normalised: "FOUR" is scored as "four"
        assert metrics == {"wer": pytest.approx(expected.wer), "cer": pytest.approx(expected.cer), "n": 8}
        assert 0.0 < metrics["wer"] <= 3 / 8  # the five training words are right
        assert evaluate(model, dataset.select(range(5)))["wer"] == 0.0


def test_evaluate_by_speaker_scores_each_voice_and_recombines_to_the_corpus(las, fsdd_dir: Path) -> None:
    names, words = FILES + OTHERS, WORDS + OTHER_WORDS
    speakers = ["a", "b", "a", "b", "a", "c", "c", "c"]  # c: the three recordings not trained on
    dataset = asr_dataset({
        "id": names, "audio": [{"path": str(fsdd_dir / f"{n}.wav"), "bytes": None} for n in names],
        "text": words, "duration": [0.0] * len(names), "speaker": speakers, "lang": ["en"] * len(names),
    })
    metrics = evaluate(las, dataset, batch_size=3, by_speaker=True)
    hyps = las.transcribe([load_audio(fsdd_dir / f"{n}.wav", RATE) for n in names])
    assert sorted(metrics["speakers"]) == ["a", "b", "c"]
    for speaker, part in metrics["speakers"].items():
        mine = [i for i, s in enumerate(speakers) if s == speaker]
        expected = error_rates([words[i] for i in mine], [hyps[i] for i in mine])
        assert part["wer"] == pytest.approx(expected.wer) and part["n"] == len(mine)
    # Word-weighted, the voices' error rates add up to the corpus WER.
    errors = sum(p["wer"] * p["words"] for p in metrics["speakers"].values())
    assert errors / sum(p["words"] for p in metrics["speakers"].values()) == pytest.approx(metrics["wer"])
    assert metrics["speakers"]["b"]["wer"] == 0.0 and metrics["speakers"]["c"]["wer"] > 0.0
    assert "speakers" not in evaluate(las, dataset, batch_size=3)


@pytest.fixture(scope="module")
def saved(las, data, fsdd_dir: Path, tmp_path_factory) -> dict:
    """The LAS model saved to a fresh folder, and two of its recordings as an 8 kHz WAV and a 44.1 kHz FLAC."""
    root = tmp_path_factory.mktemp("cli")
    folder = las.save_pretrained(root / "model")
    x = root / "x.wav"
    save_audio(x, load_audio(fsdd_dir / f"{FILES[2]}.wav"), 8000)
    y = root / "y.flac"
    save_audio(y, resample(load_audio(fsdd_dir / f"{FILES[3]}.wav"), 8000, 44100), 44100)
    return {"folder": folder, "files": [x, y], "root": root}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = asr_main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_transcribe_from_a_fresh_save_matches_the_python_api(saved, capsys) -> None:
    folder, files = saved["folder"], saved["files"]
    reloaded = LASModel.from_pretrained(folder)
    api = transcribe(reloaded, files)
    assert [r.text for r in api] == [WORDS[2], WORDS[3]]
    code, out, _ = run_cli(capsys, "transcribe", "--model", folder, *files)
    assert code == 0
    assert out.splitlines() == [f"{f}\t{r.text}" for f, r in zip(files, api)]
    options = DecodingOptions(beam_size=3, ctc_weight=0.3, nbest=2, max_len_ratio=reloaded.config.max_decode_ratio)
    api_beam = transcribe(reloaded, files, options)
    png = saved["root"] / "att.png"
    code, out, err = run_cli(capsys, "transcribe", "--model", folder, *files, "--beam", "3", "--ctc-weight", "0.3",
                             "--nbest", "2", "--json", "--plot-attention", png, "--no-progress")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    for line, result in zip(lines, api_beam):
        assert line["text"] == result.text and line["source"] == result.source
        assert [n["text"] for n in line["nbest"]] == [n.text for n in result.nbest]
        assert line["score"] == pytest.approx(result.score)
    written = sorted(saved["root"].glob("att_*.png"))
    assert [p.name for p in written] == ["att_0_x.png", "att_1_y.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)


def test_cli_int8_and_stream_give_the_same_words(saved, capsys) -> None:
    folder, files = saved["folder"], saved["files"]
    code, out, _ = run_cli(capsys, "transcribe", "--model", folder, *files, "--int8")
    assert code == 0 and [line.split("\t")[1] for line in out.splitlines()] == [WORDS[2], WORDS[3]]
    code, _, err = run_cli(capsys, "transcribe", "--model", folder, files[0], "--stream")
    assert code == 1 and "mocha" in err  # a location-attention model cannot stream


def test_cli_evaluate_prints_the_metrics_of_the_python_api(saved, las, fsdd_dir: Path, capsys) -> None:
    manifest = saved["root"] / "test.csv"
    names, words = FILES[:3] + OTHERS[:1], WORDS[:3] + OTHER_WORDS[:1]
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "text"])
        writer.writerows([[str(fsdd_dir / f"{n}.wav"), w] for n, w in zip(names, words)])
    code, out, _ = run_cli(capsys, "evaluate", "--model", saved["folder"], "--data", manifest, "--beam", "2")
    assert code == 0
    hyps = transcribe(las, [fsdd_dir / f"{n}.wav" for n in names], DecodingOptions(beam_size=2))
    expected = error_rates(words, [h.text for h in hyps])
    assert json.loads(out) == {"wer": pytest.approx(expected.wer), "cer": pytest.approx(expected.cer), "n": 4}
    code, out, err = run_cli(capsys, "evaluate", "--model", saved["folder"], "--data", "fsdd:test")
    assert code == 1 and "--data-root" in err


def test_bad_inputs_are_named(las, saved, capsys) -> None:
    broken = saved["root"] / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    with pytest.raises(AudioError, match="broken.wav"):
        transcribe(las, [broken])
    code, _, err = run_cli(capsys, "transcribe", "--model", saved["folder"], broken)
    assert code == 1 and "broken.wav" in err
    with pytest.raises(ConfigError, match="1-D"):
        transcribe(las, [np.zeros((2, 100), dtype=np.float32)])
    bare = tiny_rnn_las(las.tokenizer, "location")
    bare.tokenizer = None
    with pytest.raises(ConfigError, match="tokenizer"):
        transcribe(bare, [np.zeros(1000, dtype=np.float32)])


def test_bf16_autocast_gives_the_same_words_and_a_bad_precision_is_named(las, saved, capsys) -> None:
    """bf16 autocast (CLI --bf16, precision="bfloat16") reads the same words as float32 on the overfit model,
    greedy and with joint CTC/attention beam search; an unknown precision fails before any audio is read."""
    folder, files = saved["folder"], saved["files"]
    code, out, _ = run_cli(capsys, "transcribe", "--model", folder, *files, "--bf16")
    assert code == 0 and [line.split("\t")[1] for line in out.splitlines()] == [WORDS[2], WORDS[3]]
    options = DecodingOptions(beam_size=3, ctc_weight=0.3)
    float32 = [r.text for r in transcribe(las, files, options)]
    bf16 = [r.text for r in transcribe(las, files, options, precision="bfloat16")]
    assert bf16 == float32 == [WORDS[2], WORDS[3]]
    with pytest.raises(ConfigError, match="'float16'"):
        transcribe(las, ["/no/such/file.wav"], precision="float16")


def test_bf16_falls_back_to_float32_with_a_warning_where_the_cpu_lacks_bf16(las, saved, monkeypatch) -> None:
    """On CPUs whose oneDNN has no bf16 (AVX2-only), bf16 autocast breaks every LSTM: decode in float32 instead."""
    import speechseq.inference as inference

    monkeypatch.setattr(inference, "bf16_supported", lambda device: False)
    files, options = saved["files"], DecodingOptions(beam_size=3, ctc_weight=0.3)
    with pytest.warns(RuntimeWarning, match="float32"):
        fallback = transcribe(las, files, options, precision="bfloat16")
    exact = transcribe(las, files, options)
    assert [r.text for r in fallback] == [r.text for r in exact]
    assert [r.score for r in fallback] == [r.score for r in exact]  # bit for bit: no bf16 anywhere


def test_score_beam_prunes_the_cli_search_as_the_python_api_does(saved, capsys) -> None:
    """``--score-beam`` reaches the search: the CLI's N-best equals the API's pruned search, which on the
    overfit model keeps the full beam's words while scoring fewer hypotheses."""
    folder, files = saved["folder"], saved["files"]
    reloaded = LASModel.from_pretrained(folder)
    options = DecodingOptions(beam_size=4, ctc_weight=0.3, nbest=2, max_len_ratio=reloaded.config.max_decode_ratio)
    pruned = transcribe(reloaded, files, dataclasses.replace(options, score_beam=3.0))
    full = transcribe(reloaded, files, options)
    assert [r.text for r in pruned] == [r.text for r in full] == [WORDS[2], WORDS[3]]
    # ... but not the same N-best: a runner-up the full beam finds was pruned early (so the CLI check below
    # would notice a flag that never reached the search)
    assert [[n.text for n in r.nbest] for r in pruned] != [[n.text for n in r.nbest] for r in full]
    code, out, _ = run_cli(capsys, "transcribe", "--model", folder, *files, "--beam", "4", "--ctc-weight", "0.3",
                           "--nbest", "2", "--score-beam", "3", "--json", "--no-progress")
    assert code == 0
    for line, result in zip([json.loads(x) for x in out.splitlines()], pruned):
        assert [n["text"] for n in line["nbest"]] == [n.text for n in result.nbest]
        assert [n["score"] for n in line["nbest"]] == pytest.approx([n.score for n in result.nbest])


def test_closed_set_decoding_picks_the_best_allowed_transcript(las, ctc, data, fsdd_dir: Path) -> None:
    """``vocabulary=[...]``: the output is always one of the phrases, the training words are read right, and
    the winner is the phrase whose teacher-forced joint score (the model's own loss terms) is best."""
    vocabulary = WORDS + OTHER_WORDS + ["nineteen"]
    waves = data[0] + [load_audio(fsdd_dir / f"{n}.wav", RATE) for n in OTHERS]
    options = DecodingOptions(beam_size=len(vocabulary), nbest=len(vocabulary), ctc_weight=0.3)
    for model in (las, ctc):
        results = transcribe(model, waves, options, batch_size=3, vocabulary=vocabulary)
        assert [r.text for r in results[:5]] == WORDS
        assert all(r.text in vocabulary for r in results)
        assert all(sorted(n.text for n in r.nbest) == sorted(vocabulary) for r in results)
    tokens, lengths = pad_tokens([las.tokenizer.encode(w) for w in vocabulary])
    for result, wave in zip(transcribe(las, waves, options, vocabulary=vocabulary), waves):
        with torch.no_grad():
            out = las(torch.from_numpy(wave)[None].repeat(len(vocabulary), 1), torch.tensor([len(wave)] * 9),
                      tokens, lengths)
        # the loss is per token and label-smoothed: rebuild the unsmoothed sums from the logits instead
        logp = out.logits.log_softmax(-1)
        targets = torch.cat([tokens, torch.zeros(len(vocabulary), 1, dtype=torch.long)], 1)
        targets[torch.arange(len(vocabulary)), lengths] = 2
        att = (logp.gather(-1, targets[..., None])[..., 0] * (targets != 0)).sum(1)
        ctc_logp = -torch.nn.functional.ctc_loss(out.encoder.ctc_log_probs.transpose(0, 1), tokens,
                                                 out.encoder.lengths, lengths, reduction="none")
        joint = 0.7 * att + 0.3 * ctc_logp
        assert result.text == vocabulary[int(joint.argmax())]
        assert result.score == pytest.approx(float(joint.max()), abs=1e-3)


def test_cli_vocabulary_from_a_list_or_a_file_and_bad_phrases_are_named(saved, capsys) -> None:
    folder, files = saved["folder"], saved["files"]
    reloaded = LASModel.from_pretrained(folder)
    phrases = ["zero", "one", "two", "three", "seven", "four"]
    api = transcribe(reloaded, files, DecodingOptions(ctc_weight=0.3), vocabulary=phrases)
    assert [r.text for r in api] == [WORDS[2], WORDS[3]]
    listed = saved["root"] / "digits.txt"
    listed.write_text("\n".join(phrases) + "\n\n")
    for spec in (",".join(phrases), listed):
        code, out, _ = run_cli(capsys, "transcribe", "--model", folder, *files, "--ctc-weight", "0.3",
                               "--vocabulary", spec, "--nbest", "3", "--json", "--no-progress")
        assert code == 0
        lines = [json.loads(x) for x in out.splitlines()]
        assert [line["text"] for line in lines] == [r.text for r in api]
        assert [line["score"] for line in lines] == pytest.approx([r.score for r in api])
        assert all(len(line["nbest"]) == 3 for line in lines)
    for spec, message in [("zero,z€ro", "'z€ro': the model cannot write it"), ("one,,two", "entry 1 is empty"),
                          ("one,one", "'one' is repeated")]:
        code, _, err = run_cli(capsys, "transcribe", "--model", folder, files[0], "--vocabulary", spec)
        assert code == 1 and message in err
    code, _, err = run_cli(capsys, "transcribe", "--model", folder, files[0], "--stream", "--vocabulary", "one")
    assert code == 1 and "--vocabulary" in err
