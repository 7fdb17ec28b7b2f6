"""Validation during training (trainer/validation.py): the ranking that picks best.pt and drives early stopping.

Covers, against the literal walk of docs/original.md 2.4 (tests/_references.py, one question at a time): the top 10000
songs / top 30 tags, seen songs and tags removed (tags by their label offset), songs issued after the playlist's
date removed (an equal date allowed), the first 100 / 10 kept, equal logits in index order; the README's padding of
short lists (popular items, skipping seen, chosen and future items; the date filter relaxed only when too few songs
pass it) and its counts in the metrics; only the questions the model accepts are scored, in batches; the metric
against an independent nDCG; the validation-loss targets (question + answer items); and the same on a real model
and step 1's dumps. Stand-in models with fixed logits and a hand-made vocabulary; seconds.
Run: python -m pytest tests/test_validation.py -q
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _references import ndcg, pad_from_popularity, walk

from common.jsonio import InputError
from data_loader.dumps import load_dumps
from data_loader.playlists import CSR, Playlists
from data_loader.vocab import Vocab
from models.base import PlaylistModel
from models.songs_tags_artists import SongsTagsArtistsConfig, SongsTagsArtistsModel
import trainer.validation as validation

CPU = torch.device("cpu")
S, T = 10_100, 40  # more songs than the 10000-deep walk, more tags than the 30-deep one
RAW = 500_000  # raw song id of song index 0: decoding mistakes show
SEARCH, KEEP = (10_000, 30), (100, 10)  # docs/original.md 2.4: top 10000 songs / 30 tags, first 100 / 10 kept


class FixedLogits(PlaylistModel):
    """Model 1's routing (a question with an in-vocab song or tag) with preset logits per question row; records the
    validation-loss targets it is given."""

    name = "fixed"

    def __init__(self, song_logits: np.ndarray, tag_logits: np.ndarray):
        super().__init__()
        self.song_logits, self.tag_logits = torch.as_tensor(song_logits), torch.as_tensor(tag_logits)
        self.loss_batches: list[dict[str, torch.Tensor]] = []

    @staticmethod
    def accepts(q: Playlists) -> np.ndarray:
        return (q.songs.lengths() + q.tags.lengths()) > 0

    def question_batch(self, q: Playlists, rows: np.ndarray) -> dict[str, torch.Tensor]:
        return {"rows": torch.from_numpy(np.asarray(rows, dtype=np.int64))}

    def scores(self, batch):
        return self.song_logits[batch["rows"]], self.tag_logits[batch["rows"]]

    def loss(self, batch, ranking_weight=0.0):
        self.loss_batches.append(batch)
        zero = torch.zeros(())
        return zero, zero


def case(tmp_path: Path) -> SimpleNamespace:
    """Seven questions, each testing one part of the walk (see the comments), with their logits and dates."""
    rng = np.random.default_rng(0)
    # distinct logits in every row (a permutation), so that only the ties set below are ties
    song_logits = np.stack([rng.permutation(S) for _ in range(7)]).astype(np.float32) * (6 / S) - 3
    tag_logits = np.stack([rng.permutation(T) for _ in range(7)]).astype(np.float32) * (6 / T) - 3
    dates = rng.choice([20100101, 20150101, 20200101], S).astype(np.int32)  # 20150101: q0's and q2's own date
    dates[:150] = 20000101
    dates[5] = 20100101  # after q1's date: its padding must skip song 5
    questions = []  # (song indices, tag indices, updt)
    # q0: its seen songs 3, 7 and seen tag 1 top the logits; its next best songs tie and go by index
    questions.append(([3, 7], [1], 20150101))
    song_logits[0, [3, 7]] = 9.0
    song_logits[0, [4000, 30, 2000, 31]] = 8.0
    dates[[2000, 4000]] = 20100101
    tag_logits[0, 1] = 9.0
    # q1, an old playlist: only songs 0..149 but 5 are issued by its date, and its logits rise with the index, so
    # the walk through the top 10000 (songs 10099..100) finds 149..100 and the padding adds 0..50 but 5
    questions.append(([S - 1], [], 20050101))
    song_logits[1] = np.linspace(-5, 5, S, dtype=np.float32)
    # q2: a song issued on the playlist's own date is allowed, one issued a day later is not
    questions.append(([5], [], 20150101))
    dates[[200, 201]] = [20150101, 20150102]
    song_logits[2, [200, 201]] = [7.0, 8.0]
    # q3: 28 seen tags fill the top 30 but for tags 11 and 10: the rest of its 10 tags come from the padding
    questions.append(([0], list(range(12, T)), 20150101))
    tag_logits[3] = np.linspace(-3, 3, T, dtype=np.float32)
    # q4: title only, which this model does not answer
    questions.append(([], [], 20150101))
    # q5: older than every song: padded from popularity with the date filter relaxed (seen song 2 still skipped)
    questions.append(([2], [0], 19990101))
    # q6: an ordinary question in the last batch
    questions.append(([9, 10, 11], [2, 3], 20200101))

    songs, tags, updt = (list(x) for x in zip(*questions))
    n = len(questions)
    q = Playlists(np.arange(100, 100 + n, dtype=np.int64), np.asarray(updt, np.int32), CSR.from_lists(songs),
                  CSR.from_lists([[S + t for t in r] for r in tags]), CSR.from_lists([[]] * n),
                  CSR.from_lists([[9]] * n))
    answers = [{"id": 100 + i, "songs": [RAW + s for s in (100, 149, 0, 40, 200, 4000, 31)] + [7, RAW + S + 5],
                "tags": ["tag0", "tag11", "tag5", "tag10", "tag25", "nope"]} for i in range(n)]
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers), encoding="utf-8")
    vocab = Vocab([RAW + s for s in range(S)], [f"tag{t}" for t in range(T)], [],
                  CSR(np.zeros(0, np.int32), np.zeros(S + 1, np.int64)))
    dumps = SimpleNamespace(vocab=vocab, val_questions=q, val_answers_path=path, val_questions_path=tmp_path / "q",
                            song_issue_dates=dates)
    return SimpleNamespace(dumps=dumps, model=FixedLogits(song_logits, tag_logits), answers=answers,
                           songs=songs, tags=tags, updt=updt, dates=dates)


def reference_record(c: SimpleNamespace, i: int, search=SEARCH, keep=KEEP) -> dict:
    """Question i answered by docs/original.md 2.4's walk and the README's padding, in raw ids."""
    seen_s, seen_t, updt = set(c.songs[i]), set(c.tags[i]), c.updt[i]
    song_logits, tag_logits = c.model.song_logits[i].numpy(), c.model.tag_logits[i].numpy()
    songs = walk(song_logits, lambda s: s in seen_s or c.dates[s] > updt, search[0], keep[0])
    songs = pad_from_popularity(songs, S, keep[0], lambda s: s not in seen_s and c.dates[s] <= updt,
                                lambda s: s not in seen_s)
    tags = pad_from_popularity(walk(tag_logits, lambda t: t in seen_t, search[1], keep[1]), T, keep[1],
                               lambda t: t not in seen_t)
    return {"id": 100 + i, "songs": [RAW + s for s in songs], "tags": [f"tag{t}" for t in tags]}


def spy_results(monkeypatch) -> list:
    """Capture the recommendation lists validate hands to the evaluator."""
    seen = []
    real = validation.evaluate_from_data

    def spy(gt, rec, *args, **kwargs):
        seen.append(rec)
        return real(gt, rec, *args, **kwargs)

    monkeypatch.setattr(validation, "evaluate_from_data", spy)
    return seen


def test_ranking_matches_the_original_walk(tmp_path, monkeypatch):
    c = case(tmp_path)
    captured = spy_results(monkeypatch)
    result = validation.validate(c.model, c.dumps, CPU, bs=3)
    accepted = [0, 1, 2, 3, 5, 6]
    want = [reference_record(c, i) for i in accepted]
    assert captured[0] == want
    # the walk's particular cases, spelled out
    by_id = {r["id"] - 100: r for r in captured[0]}
    assert by_id[0]["songs"][:4] == [RAW + 30, RAW + 31, RAW + 2000, RAW + 4000]  # seen 3, 7 gone; ties by index
    assert "tag1" not in by_id[0]["tags"]
    assert by_id[1]["songs"] == [RAW + s for s in [*range(149, 99, -1), *range(5), *range(6, 51)]]
    assert RAW + 200 in by_id[2]["songs"] and RAW + 201 not in by_id[2]["songs"]
    assert by_id[3]["tags"] == [f"tag{t}" for t in [11, 10, *range(8)]]
    assert by_id[5]["songs"] == [RAW + s for s in [0, 1, *range(3, 101)]]
    assert result["count"] == len(accepted)
    assert (result["padded_songs"], result["date_relaxed"], result["padded_tags"]) == (2, 1, 1)
    # the score, by an independent nDCG over the same lists
    answers = {a["id"]: a for a in c.answers}
    music = np.mean([ndcg(answers[r["id"]]["songs"], r["songs"]) for r in want])
    tag = np.mean([ndcg(answers[r["id"]]["tags"], r["tags"]) for r in want])
    assert result["music_ndcg"] == pytest.approx(music, abs=1e-12)
    assert result["tag_ndcg"] == pytest.approx(tag, abs=1e-12)
    assert result["score"] == pytest.approx(0.85 * music + 0.15 * tag, abs=1e-12)
    assert 0 < music < 1 and 0 < tag < 1


@pytest.mark.parametrize("search, keep", [((9_999, 30), (100, 10)), ((10_001, 30), (100, 10)),
                                          ((10_000, 29), (100, 10)), ((10_000, 31), (100, 10))])
def test_the_case_tells_the_walk_depths_apart(tmp_path, search, keep):
    """The questions above give other lists for any other search depth: the comparison above can fail."""
    c = case(tmp_path)
    assert [reference_record(c, i, search, keep) for i in (1, 3)] != [reference_record(c, i) for i in (1, 3)]


def test_validation_loss_targets_are_question_plus_answer_items(tmp_path):
    c = case(tmp_path)
    validation.validate(c.model, c.dumps, CPU, bs=3)
    got = []
    for batch in c.model.loss_batches:
        for r in range(len(batch["rows"])):
            t_songs, t_tags = batch["song_targets"], batch["tag_targets"]
            got.append((set(t_songs[1, t_songs[0] == r].tolist()), set(t_tags[1, t_tags[0] == r].tolist())))
    want = []
    for i in (0, 1, 2, 3, 5, 6):
        answer = c.answers[i]
        songs = set(c.songs[i]) | {s - RAW for s in answer["songs"] if RAW <= s < RAW + S}
        tags = set(c.tags[i]) | {int(t[3:]) for t in answer["tags"] if t.startswith("tag")}
        want.append((songs, tags))
    assert got == want


def test_nothing_to_answer_and_too_small_a_vocabulary(tmp_path):
    c = case(tmp_path)
    c.dumps.val_questions = c.dumps.val_questions.take(np.array([4]))  # title only
    with pytest.raises(InputError, match="no validation question"):
        validation.validate(c.model, c.dumps, CPU)
    c = case(tmp_path)
    small = SimpleNamespace(**vars(c.dumps))
    small.vocab = Vocab(c.dumps.vocab.songs, c.dumps.vocab.tags[:10], [], c.dumps.vocab.song_artists)
    small.val_questions = c.dumps.val_questions.take(np.array([0]))  # seen tag 1: 9 tags left for 10 places
    model = FixedLogits(c.model.song_logits[:1].numpy(), c.model.tag_logits[:1, :10].numpy())
    with pytest.raises(InputError, match="too few items"):
        validation.validate(model, small, CPU)


def test_real_model_on_step1_dumps(run_root, monkeypatch):
    """An untrained model 1 on the shared small dataset: the lists are the walk over its own scores, the loss is
    the BCE against question + answer items, and the model's train mode is restored."""
    dumps = load_dumps(run_root / "output")
    torch.manual_seed(0)
    model = SongsTagsArtistsModel(SongsTagsArtistsConfig.from_dumps(dumps, d_model=16, d_ff=32)).train()
    captured = spy_results(monkeypatch)
    result = validation.validate(model, dumps, CPU, bs=16)
    assert model.training

    q, vocab, dates = dumps.val_questions, dumps.vocab, dumps.song_issue_dates
    answers = {a["id"]: a for a in json.loads(dumps.val_answers_path.read_text(encoding="utf-8"))}
    rows = np.flatnonzero((q.songs.lengths() > 0) | (q.tags.lengths() > 0))
    model.eval()
    with torch.no_grad():  # in validate's batches of 16: a padded row's logits may differ in the last bit
        logits = [model(model.question_batch(q, rows[a : a + 16])["ids"]) for a in range(0, len(rows), 16)]
    songs, tags, artists = (torch.cat(x) for x in zip(*logits))  # [n, S], [n, T], [n, A]
    label = {raw: i for i, raw in enumerate(vocab.songs)} | {t: vocab.n_songs + i for i, t in enumerate(vocab.tags)}
    want, losses = [], []
    S_, T_ = vocab.n_songs, vocab.n_tags
    for k, i in enumerate(rows):
        seen_s, seen_t, updt = set(q.songs.row(i).tolist()), {t - S_ for t in q.tags.row(i).tolist()}, q.updt[i]
        s = pad_from_popularity(walk(songs[k].numpy(), lambda x: x in seen_s or dates[x] > updt, 10_000, 100), S_, 100,
                                lambda x: x not in seen_s and dates[x] <= updt, lambda x: x not in seen_s)
        t = pad_from_popularity(walk(tags[k].numpy(), lambda x: x in seen_t, 30, 10), T_, 10, lambda x: x not in seen_t)
        want.append({"id": int(q.ids[i]), "songs": [vocab.songs[x] for x in s], "tags": [vocab.tags[x] for x in t]})
        answer = answers[int(q.ids[i])]
        y_songs = seen_s | {label[x] for x in answer["songs"] if x in label}
        y_tags = seen_t | {label[x] - S_ for x in answer["tags"] if x in label}
        y_artists = {a - S_ - T_ for x in y_songs for a in vocab.song_artists.row(x).tolist()}
        losses.append(sum(w * float(F.binary_cross_entropy_with_logits(x[k], multi_hot(y, x.shape[1])))
                          for x, y, w in ((songs, y_songs, 1.0), (tags, y_tags, 0.15), (artists, y_artists, 0.15))))
    assert captured[0] == want
    assert result["count"] == len(rows) > 0
    assert result["val_loss"] == pytest.approx(float(np.mean(losses)), rel=1e-5)
    assert result["score"] == pytest.approx(0.85 * np.mean([ndcg(answers[r["id"]]["songs"], r["songs"]) for r in want])
                                            + 0.15 * np.mean([ndcg(answers[r["id"]]["tags"], r["tags"]) for r in want]))


def multi_hot(items: set, width: int) -> torch.Tensor:
    y = torch.zeros(width)
    y[sorted(items)] = 1.0
    return y
