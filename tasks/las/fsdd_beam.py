"""Greedy vs beam 10 + CTC 0.3 on each FSDD fold's held-out speaker, for the fine-tuned LAS fold models.

Run after ``tasks/las/fsdd_loso.py --config speechseq/configs/las_fsdd_finetune.yaml`` (run folders below);
prints one line per fold and a JSON summary (tasks/las/README.md). No LM: the embedded corpus's LM has never
seen "zero", and each recording holds one word.
"""
import json, sys, torch
from speechseq.recipes.base import AsrDataConfig, load_asr_splits
from speechseq.models import from_pretrained
from speechseq.decoding import DecodingOptions
from speechseq.inference import evaluate, default_options
import dataclasses
torch.set_num_threads(2)
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
root = str(REPO.parent / "shared" / "data" / "fsdd" / "recordings")
runs = {"george": "runs/las_fsdd_ft/george", **{s: f"runs/las_fsdd_ft_rest/{s}" for s in ["jackson", "lucas", "nicolas", "yweweler"]}}
out = {}
for spk, run in runs.items():
    model = from_pretrained(REPO / run / "final")
    data = load_asr_splits(AsrDataConfig(corpus="fsdd", root=root, fsdd_unseen_speakers=[spk]))["test_unseen"]
    base = default_options(model)
    g = evaluate(model, data, base, batch_size=32)
    b = evaluate(model, data, dataclasses.replace(base, beam_size=10, ctc_weight=0.3), batch_size=32)
    out[spk] = {"greedy": round(g["wer"] * 100, 1), "beam10_ctc0.3": round(b["wer"] * 100, 1), "n": g["n"]}
    print(spk, out[spk], flush=True)
print(json.dumps(out))
