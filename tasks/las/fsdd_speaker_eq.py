"""Write a speaker-equalised copy of FSDD (or of one new speaker's recordings) for the LAS FSDD recipe.

Every speaker's recordings are filtered so that their long-term spectrum becomes the *reference*: the mean
long-term spectrum of the reference speakers (in a leave-one-speaker-out fold, the four training speakers; the
held-out speaker's audio only sets his own curve, never the reference, and no transcript is read).
See ``speechseq/speaker_eq.py`` and ``tasks/las/fsdd_experiments.md``.

Usage::

    # a fold's copy: reference = the four training speakers
    python tasks/las/fsdd_speaker_eq.py ../shared/data/fsdd/recordings runs/fsdd_eq/george \
        --reference-speakers jackson,lucas,nicolas,yweweler
    # a new speaker's recordings (any names), to the reference a model was trained with
    python tasks/las/fsdd_speaker_eq.py my_recordings/ my_equalised/ --one-speaker \
        --reference runs/las_fsdd_eq/audio/all/speaker_eq.json

``DST/speaker_eq.json`` records the reference curve, the settings, the reference speakers and each speaker's
gain range; a folder whose record matches the request is reused, not rewritten.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from speechseq.audio import audio_info, load_audio, save_audio
from speechseq.data.readers import DatasetFormatError, load_fsdd
from speechseq.errors import AudioError
from speechseq.speaker_eq import EqualizerConfig, equalize, long_term_spectrum

RECORD = "speaker_eq.json"


def group_by_speaker(src: Path, one_speaker: bool = False) -> dict[str, list[Path]]:
    """Speaker -> WAV files: FSDD's (as the library's reader names them), or all files as one speaker."""
    if one_speaker:
        files = sorted(src.glob("*.wav"))
        if not files:
            raise FileNotFoundError(f"{src}: no .wav files")
        return {"speaker": files}
    try:
        rows = load_fsdd(src)
    except DatasetFormatError as error:
        raise DatasetFormatError(f"{error} (use --one-speaker for one speaker's recordings)") from error
    groups: dict[str, list[Path]] = defaultdict(list)
    for speaker, audio in zip(rows["speaker"], rows["audio"]):
        groups[speaker].append(Path(audio["path"]))
    return dict(groups)


def _rate(files: list[Path]) -> int:
    rates = {path: audio_info(path).sample_rate for path in files}
    first = next(iter(rates.values()))
    for path, rate in rates.items():
        if rate != first:
            raise AudioError(path, f"sample rate {rate} Hz, but {files[0].name} has {first} Hz; "
                                   "one curve needs one rate (resample the folder first)")
    return first


def _fingerprint(groups: dict[str, list[Path]]) -> str:
    """A hash of the source's speakers, file names and sizes: a copy is reused only for the same files."""
    digest = hashlib.sha1()
    for speaker in sorted(groups):
        for path in sorted(groups[speaker]):
            digest.update(f"{speaker}/{path.name}/{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def _record_matches(dst: Path, request: dict[str, Any]) -> bool:
    path = dst / RECORD
    if not path.is_file():
        return False
    record = json.loads(path.read_text())
    return all(record.get(key) == value for key, value in request.items())


def equalize_folder(
    src: Path,
    dst: Path,
    reference_speakers: list[str] | None = None,
    reference_file: Path | None = None,
    one_speaker: bool = False,
    config: EqualizerConfig = EqualizerConfig(),
) -> dict[str, Any]:
    """Equalise every speaker of ``src`` into ``dst`` (same file names) and write ``dst/speaker_eq.json``.

    Args:
        src / dst: source and destination folders of WAV files.
        reference_speakers: speakers whose mean long-term spectrum is the reference (default: all of ``src``).
        reference_file: a ``speaker_eq.json`` whose reference curve to use instead (e.g. the one a model was
            trained with, for a new speaker).
        one_speaker: treat every file of ``src`` as one speaker.
        config: analysis settings.

    Returns:
        The record written to ``dst/speaker_eq.json``.
    """
    groups = group_by_speaker(src, one_speaker)
    rate = _rate([path for files in groups.values() for path in files])
    request: dict[str, Any] = {"source": str(src.resolve()), "files": _fingerprint(groups),
                               "config": dataclasses.asdict(config), "sample_rate": rate}
    if reference_file is not None:
        given = json.loads(reference_file.read_text())
        if given["sample_rate"] != rate or given["config"] != dataclasses.asdict(config):
            raise ValueError(f"{reference_file}: measured at {given['sample_rate']} Hz with {given['config']}; "
                             f"{src} is at {rate} Hz with {dataclasses.asdict(config)}")
        request["reference_from"] = str(reference_file.resolve())
    else:
        chosen = sorted(reference_speakers or groups)
        missing = [s for s in chosen if s not in groups]
        if missing:
            raise ValueError(f"{src}: no recordings of reference speaker(s) {missing}; found {sorted(groups)}")
        request["reference_speakers"] = chosen
    if _record_matches(dst, request):
        return json.loads((dst / RECORD).read_text())

    waves = {s: [load_audio(p) for p in files] for s, files in groups.items()}  # read once, used twice
    curves = {s: long_term_spectrum(waves[s], rate, config, source=f"{src} speaker {s}") for s in groups}
    if reference_file is not None:
        reference = np.asarray(json.loads(reference_file.read_text())["reference"])
    else:
        reference = np.mean([curves[s] for s in request["reference_speakers"]], axis=0)
    gains_db: dict[str, list[float]] = {}
    for speaker, files in groups.items():
        log_gain = reference - curves[speaker]
        gains_db[speaker] = [round(float(v) * 20 / np.log(10), 1) for v in (log_gain.min(), log_gain.max())]
        for path, wave in zip(files, waves[speaker]):
            save_audio(dst / path.name, equalize(wave, rate, log_gain, config), rate)
    record = {**request, "reference": reference.tolist(), "gain_db_range": gains_db}
    (dst / RECORD).write_text(json.dumps(record, indent=1) + "\n")  # last: a half-written folder has none
    return record


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--reference-speakers", default="", help="comma-separated (default: every speaker of SRC)")
    parser.add_argument("--reference", type=Path, help="speaker_eq.json whose reference curve to use")
    parser.add_argument("--one-speaker", action="store_true", help="every file of SRC is one speaker")
    args = parser.parse_args(argv)
    speakers = [s for s in args.reference_speakers.split(",") if s] or None
    record = equalize_folder(args.src, args.dst, speakers, args.reference, args.one_speaker)
    for speaker, (low, high) in record["gain_db_range"].items():
        print(f"{speaker}: gain {low:+.1f} .. {high:+.1f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
