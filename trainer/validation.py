"""Validation during training (docs/original.md 2.4, 3.3, 3.4): arena nDCG on the local val questions; model 2's MLM
check.

`validate` scores the questions the model answers (its `accepts` rule) against dataset/answers/val.json:
songs = the top 10000 by sigmoid minus seen songs and songs issued after the playlist's updt_date, first 100 kept;
tags = the top 30 minus seen tags, first 10 kept (equal logits in index order, as in the ensemble); decoded to raw
ids and scored by common/metric.py's evaluate_from_data. It also reports a validation loss with question + answer
items as targets (logged only, as in the original).
Difference: where fewer than 100 songs / 10 tags survive the walk (tiny vocabularies, old playlists), the list is
padded as the ensemble pads its answers (README): with the most popular vocabulary items that are not in it, not
seen and, for songs, not issued after the playlist's date (that filter is dropped only if too few songs pass it).
The number of padded rows is logged (metrics padded_songs, padded_tags, date_relaxed, present when not 0); the
original would crash on such lists.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from common.jsonio import InputError, load_json
from common.metric import evaluate_from_data
from data_loader.dumps import Dumps
from data_loader.encode import artists_csr
from data_loader.playlists import CSR, hstack, row_sets
from data_loader.songs_tags_artists_data import coo
from data_loader.vocab import Vocab
from models.base import PlaylistModel
from models.plylst_title import PlylstTitleModel
from trainer.candidates import first_survivors, issue_date_banned

SONGS_SEARCH, SONGS_KEEP = 10000, 100
TAGS_SEARCH, TAGS_KEEP = 30, 10

_answers_cache: dict[tuple[str, float], dict[int, dict]] = {}


def load_answers(path: str | os.PathLike) -> dict[int, dict]:
    """{playlist id: answer dict} of an answers file, read once per (path, modification time)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: answers file not found; rerun step 1 (data_loader/dump_datasets.py)")
    key = (str(path.resolve()), path.stat().st_mtime)
    if key not in _answers_cache:
        _answers_cache.clear()
        _answers_cache[key] = {int(a["id"]): a for a in load_json(path)}
    return _answers_cache[key]


def pad_popular(idx: torch.Tensor, blocked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill the -1 tail of each row of idx long [B, k] with the lowest item ids (the vocabulary is in popularity
    order) that are neither blocked (bool [B, V]) nor already in the row.

    Returns (the filled idx, bool [B] the rows that were short); a row with too few allowed items keeps -1s at its
    end. Only short rows are visited (a rare path: real vocabularies leave 100 survivors in the walk).
    """
    idx = idx.clone()
    short = (idx < 0).any(1)
    for r in short.nonzero().flatten().tolist():
        free = ~blocked[r]
        free[idx[r][idx[r] >= 0]] = False
        gap = int((idx[r] >= 0).sum())  # survivors come first, the -1 padding after them
        fill = free.nonzero().flatten()[: idx.shape[1] - gap]
        idx[r, gap : gap + len(fill)] = fill
    return idx, short


def _row_mask(csr: CSR, first_id: int, width: int, device: torch.device) -> torch.Tensor:
    """bool [len(csr), width]: True at each row's items (label id - first_id)."""
    rows, cols = coo(csr, first_id).to(device)
    mask = torch.zeros(len(csr), width, dtype=torch.bool, device=device)
    mask[rows, cols] = True
    return mask


def _answer_targets(answers: list[dict], q_songs: CSR, q_tags: CSR, vocab: Vocab) -> tuple[CSR, CSR, CSR]:
    """Validation-loss targets: the in-vocab songs, tags and artists of question + answer (original's loss check)."""
    a_songs = CSR.from_lists(vocab.encode_songs(a["songs"]) for a in answers)
    a_tags = CSR.from_lists(vocab.encode_tags(a["tags"]) for a in answers)
    songs, tags = hstack([q_songs, a_songs]), hstack([q_tags, a_tags])
    songs, tags = (row_sets(x.row_ids(), x.values, len(x)) for x in (songs, tags))
    return songs, tags, artists_csr(songs, vocab)


@torch.no_grad()
def validate(model: PlaylistModel, dumps: Dumps, device: torch.device, bs: int = 128,
             amp: bool = False) -> dict[str, float]:
    """-> {music_ndcg, tag_ndcg, score, val_loss, count} over the val questions the model accepts, and the number
    of rows padded from popularity (padded_songs, padded_tags, date_relaxed) where not 0."""
    vocab, questions = dumps.vocab, dumps.val_questions
    answers_by_id = load_answers(dumps.val_answers_path)
    rows = np.flatnonzero(model.accepts(questions))
    if len(rows) == 0:
        raise InputError(f"{dumps.val_questions_path}: no validation question that {model.name} can answer")
    q = questions.take(rows)
    missing = [int(i) for i in q.ids if int(i) not in answers_by_id]
    if missing:
        raise InputError(f"{dumps.val_answers_path}: no answer for question id {missing[0]} "
                         f"({len(missing)} missing); rerun step 1")
    answers = [answers_by_id[int(i)] for i in q.ids]
    t_songs, t_tags, t_artists = _answer_targets(answers, q.songs, q.tags, vocab)
    issue = torch.from_numpy(dumps.song_issue_dates.astype(np.int64)).to(device)
    S = vocab.n_songs
    raw_songs, raw_tags = np.asarray(vocab.songs, dtype=np.int64), np.asarray(vocab.tags, dtype=object)

    was_training = model.training
    model.eval()
    song_idx, tag_idx, loss_sum = [], [], 0.0
    padded = dict.fromkeys(("padded_songs", "padded_tags", "date_relaxed"), 0)
    for a in range(0, len(rows), bs):
        b = min(a + bs, len(rows))
        part = np.arange(a, b)
        batch = {k: v.to(device) for k, v in model.question_batch(questions, rows[a:b]).items()}
        seen_songs = _row_mask(q.songs.take(part), 0, S, device)  # [b, S]
        seen_tags = _row_mask(q.tags.take(part), S, vocab.n_tags, device)  # [b, T]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            song_logits, tag_logits = model.scores(batch)
            targets = {"song_targets": coo(t_songs.take(part), 0), "tag_targets": coo(t_tags.take(part), S),
                       "artist_targets": coo(t_artists.take(part), S + vocab.n_tags)}
            _, plain = model.loss(batch | {k: v.to(device) for k, v in targets.items()})
        loss_sum += float(plain) * (b - a)
        future = issue_date_banned(issue, torch.from_numpy(q.updt[part].astype(np.int64)).to(device))  # [b, S]
        blocked = seen_songs | future
        songs, short = pad_popular(first_survivors(song_logits, blocked, SONGS_SEARCH, SONGS_KEEP)[1], blocked)
        songs, relaxed = pad_popular(songs, seen_songs)  # only where the date filter left too few songs
        tags, short_tags = pad_popular(first_survivors(tag_logits, seen_tags, TAGS_SEARCH, TAGS_KEEP)[1], seen_tags)
        if (songs < 0).any() or (tags < 0).any():
            raise InputError(f"{dumps.val_questions_path}: the vocabulary has too few items ({S} songs, "
                             f"{vocab.n_tags} tags) to recommend {SONGS_KEEP} songs and {TAGS_KEEP} tags per question")
        for key, rows_hit in zip(padded, (short, short_tags, relaxed)):
            padded[key] += int(rows_hit.sum())
        song_idx.append(songs.cpu().numpy())
        tag_idx.append(tags.cpu().numpy())
    model.train(was_training)

    song_idx, tag_idx = np.concatenate(song_idx), np.concatenate(tag_idx)
    rec = [{"id": int(pid), "songs": raw_songs[s].tolist(), "tags": raw_tags[t].tolist()}
           for pid, s, t in zip(q.ids, song_idx, tag_idx)]
    result = evaluate_from_data(answers, rec, gt_name=str(dumps.val_answers_path), rec_name="validation")
    return {"music_ndcg": result["music_ndcg"], "tag_ndcg": result["tag_ndcg"], "score": result["score"],
            "val_loss": loss_sum / len(rows), "count": result["count"], **{k: v for k, v in padded.items() if v}}


@torch.no_grad()
def validate_mlm(model: PlylstTitleModel, batches: Sequence[dict[str, torch.Tensor]], device: torch.device,
                 amp: bool = False) -> dict[str, float]:
    """-> {mlm_loss, mlm_acc, count}: model 2 stage A's masked-piece loss (model.loss) and accuracy (argmax of
    model.mlm_logits) on the fixed-masked val question titles (logged only)."""
    was_training = model.training
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for i in range(len(batches)):
        batch = {k: v.to(device) for k, v in batches[i].items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            _, plain = model.loss(batch)
            logits = model.mlm_logits(batch)  # [M, n_pieces]
        m = len(batch["mlm_labels"])
        loss_sum += float(plain) * m
        correct += int((logits.argmax(1) == batch["mlm_labels"]).sum())
        count += m
    model.train(was_training)
    return {"mlm_loss": loss_sum / max(count, 1), "mlm_acc": correct / max(count, 1), "count": count}
