"""Playlist titles: the original's normalisation and its SentencePiece BPE model (docs/original.md 1.5).

The user-defined symbols come right after SentencePiece's own unk/bos/eos, so their ids are fixed:
@songs_cls=3, @tags_cls=4, @sep=5, @mask=6, @pad=7.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Iterable

import sentencepiece as spm

from common.jsonio import temp_dir

TITLE_SPECIALS = ("@songs_cls", "@tags_cls", "@sep", "@mask", "@pad")
SONGS_CLS, TAGS_CLS, SEP, MASK, PAD = 3, 4, 5, 6, 7
SP_VOCAB_SIZE = 6000

# Runs of anything but Hangul syllables, ASCII letters, digits, '&' and space become one space.
_NOT_KEPT = re.compile(r"[^가-힣a-zA-Z0-9& ]+")


def normalise_title(title: str) -> str:
    """Replace unkept runs by one space, strip, lowercase. Inner double spaces are kept, as in the original."""
    return _NOT_KEPT.sub(" ", title).strip().lower()


def train_sentencepiece(titles: Iterable[str], out_dir: str | Path, vocab_size: int = SP_VOCAB_SIZE,
                        prefix: str = "plylst_title_bpe") -> tuple[Path, int, str | None]:
    """Train the BPE model on normalised, non-empty titles; write plylst_titles.txt, <prefix>.model/.vocab.

    Returns (model path, vocab size actually used, warning or None). A corpus too small for `vocab_size`
    (SentencePiece refuses it) is retrained at the largest size SentencePiece accepts, and the warning says so.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [t for t in (normalise_title(x) for x in titles) if t]
    if not lines:
        raise ValueError("no non-empty normalised title to train SentencePiece on")
    # a temp folder named by common.jsonio's scheme: if this process is killed, the next step 1 removes it
    with temp_dir(out_dir, "sentencepiece") as tmp:
        corpus = Path(tmp) / "plylst_titles.txt"
        corpus.write_text("".join(t + "\n" for t in lines), encoding="utf-8")
        warning = None
        try:
            _train(corpus, Path(tmp) / prefix, vocab_size)
        except RuntimeError as e:
            m = re.search(r"value <= (\d+)", str(e))
            if not m:
                raise
            warning = (f"SentencePiece: the title corpus supports at most {m.group(1)} pieces, "
                       f"not {vocab_size}; trained with {m.group(1)}")
            vocab_size = int(m.group(1))
            _train(corpus, Path(tmp) / prefix, vocab_size)
        # move all three together only once training succeeded (os.replace is atomic per file)
        for name in ("plylst_titles.txt", f"{prefix}.model", f"{prefix}.vocab"):
            shutil.move(str(Path(tmp) / name), str(out_dir / name))
    return out_dir / f"{prefix}.model", vocab_size, warning


def _train(corpus: Path, model_prefix: Path, vocab_size: int) -> None:
    """SentencePieceTrainer on `corpus`, writing <model_prefix>.model/.vocab (both paths in one folder)."""
    # The .model file records its input and prefix paths. Given as bare names from inside their (randomly named)
    # temp folder, they leave the file a function of the titles alone: a re-run of step 1 on the same data writes
    # the same bytes, so the title model's checkpoints (which pin its hash) stay usable.
    here = os.getcwd()
    os.chdir(corpus.parent)
    try:
        spm.SentencePieceTrainer.train(
            input=corpus.name, model_prefix=str(model_prefix.relative_to(corpus.parent)), vocab_size=vocab_size,
            character_coverage=0.9995, model_type="bpe", user_defined_symbols=list(TITLE_SPECIALS),
            num_threads=2, minloglevel=2,
        )
    finally:
        os.chdir(here)


def load_sentencepiece(path: str | Path) -> spm.SentencePieceProcessor:
    sp = spm.SentencePieceProcessor(model_file=str(path))
    ids = [sp.piece_to_id(s) for s in TITLE_SPECIALS]
    if ids != [SONGS_CLS, TAGS_CLS, SEP, MASK, PAD]:
        raise ValueError(f"{path}: special pieces have ids {ids}, expected {[SONGS_CLS, TAGS_CLS, SEP, MASK, PAD]}")
    return sp
