"""Mutation check: does the test suite notice when the maths changes? (Not part of CI: about 10 minutes on 2 cores.)

    python -m benchmarks.mutation_check [--only=ID,ID] [--full] [--jobs=1] [--timeout=900] [--list_only]

The tracked and untracked (not ignored) files of this repository are copied to a temporary folder. Each mutation
below is one line of one file replaced by another (same indentation); the tests named with it run on the mutated
copy (`python -m pytest -x -m "not slow"`, so a mutation counts only if a test of the default run that is not
slow-marked catches it), or with --full the whole default suite as CI runs it (`python -m pytest -x`). The table
says for each mutation whether a test failed ("caught", naming the first failing test) or not ("NOT caught", also
on a timeout). The unmutated copy is run first and must pass. Exit status 1 if any mutation was not caught,
2 if a mutation's line is not found exactly once.

Each mutation is a one-line edit; where a bug is larger than a line (deleting first_survivors' second walk) the
smallest edit with the same effect is used (its `if` made `if False`). The mutations probe the models, losses,
samplers, candidate walk, blend, validation, metric, titles, encoding, resume, the CLI and the atomic writes; add to MUTATIONS as the code grows. Equivalent
mutations (no test can see them) are left out, e.g. model 1 without its sqrt(d) embedding scale (LN(emb) undoes
it: model 1 has no position embeddings) or the issue-date correction also marking a song dated on the playlist's
own date (its corrected date is that same date).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from common.cli import UsageError, check_flags, run_cli

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    id: str
    path: str  # file, relative to the repository root
    original: str  # the exact line, without its indentation and line end; must occur exactly once in the file
    replacement: str  # what replaces it (the indentation is kept)
    tests: tuple[str, ...]  # the test files (or node ids) expected to catch it
    what: str  # what the mutation breaks, in words


M = Mutation
MODELS, ENSEMBLE, CANDIDATES = ("tests/test_models.py",), ("tests/test_ensemble.py",), ("tests/test_candidates.py",)
VALIDATION, TITLES = ("tests/test_validation.py",), ("tests/test_titles_encoding.py",)
TRAINER = ("tests/test_trainer.py",)
WALK = CANDIDATES + ENSEMBLE + VALIDATION

MUTATIONS: tuple[Mutation, ...] = (
    # ---- the candidate walk, the blend's sizes and weights, validation, models, titles, resume, CLI, writes ----
    M("date-ge", "trainer/candidates.py", "return song_issue_dates[None, :] > updt[:, None]",
      "return song_issue_dates[None, :] >= updt[:, None]", WALK, "bans songs issued on the playlist's own date"),
    M("no-deep-walk", "trainer/candidates.py", "if k_try < k_search:", "if False:", WALK,
      "deletes first_survivors' second (deep) walk"),
    M("ties-reversed", "trainer/candidates.py",
      "order = torch.sort(run * x.shape[1] + idx[rows], dim=1).indices",
      "order = torch.sort(run * x.shape[1] - idx[rows], dim=1).indices", WALK,
      "equal logits in reverse index order"),
    M("ties-straddling-cut", "trainer/candidates.py", "if straddle.any():  # the k-th value also occurs past the cut: "
      "keep the lowest indices of its group", "if False:", WALK,
      "a tie group straddling the cut keeps torch.topk's arbitrary members, not the lowest indices"),
    M("song-search", "predictor/ensembling.py", "SONG_SEARCH, TAG_SEARCH = 20000, 300",
      "SONG_SEARCH, TAG_SEARCH = 25000, 300", ENSEMBLE,
      "ensemble walks the top 25000 songs"),
    M("song-keep", "common/arena.py", "SONG_CANDIDATES = 500  # songs a member proposes per question (the "
      "original ensemble's depth, docs/original.md 4)", "SONG_CANDIDATES = 400", ENSEMBLE,
      "ensemble keeps 400 song candidates per member"),
    M("tag-search", "predictor/ensembling.py", "SONG_SEARCH, TAG_SEARCH = 20000, 300",
      "SONG_SEARCH, TAG_SEARCH = 20000, 200", ENSEMBLE, "ensemble walks the top 200 tags"),
    M("tag-keep", "common/arena.py", "TAG_CANDIDATES = 50  # tags a member proposes per question",
      "TAG_CANDIDATES = 60", ENSEMBLE, "ensemble keeps 60 tag candidates per member"),
    M("title-importance", "predictor/ensembling.py",
      "TITLE_IMPORTANCE = 0.85  # model 2's song share is 0.85 / (0.85 + n)", "TITLE_IMPORTANCE = 0.9", ENSEMBLE,
      "default song blend 0.9 instead of 0.85"),
    M("title-tag-weight", "predictor/ensembling.py",
      "TITLE_TAG_WEIGHT = 0.8  # model 2's tag scores are multiplied by 0.8", "TITLE_TAG_WEIGHT = 0.75", ENSEMBLE,
      "default tag blend 0.75 instead of 0.8"),
    M("val-song-search", "trainer/validation.py", "SONGS_SEARCH, SONGS_KEEP = 10000, 100",
      "SONGS_SEARCH, SONGS_KEEP = 20000, 100", VALIDATION, "validation walks the top 20000 songs"),
    M("val-tag-search", "trainer/validation.py", "TAGS_SEARCH, TAGS_KEEP = 30, 10",
      "TAGS_SEARCH, TAGS_KEEP = 50, 10", VALIDATION, "validation walks the top 50 tags"),
    M("val-seen", "trainer/validation.py", "seen_songs = _row_mask(q.songs.take(part), 0, S, device)  # [b, S]",
      "seen_songs = torch.zeros(b - a, S, dtype=torch.bool, device=device)", VALIDATION,
      "validation keeps the question's own songs"),
    M("val-tag-offset", "trainer/validation.py",
      "seen_tags = _row_mask(q.tags.take(part), S, vocab.n_tags, device)  # [b, T]",
      "seen_tags = _row_mask(q.tags.take(part), S - 1, vocab.n_tags + 1, device)[:, :-1]", VALIDATION,
      "seen tags shifted by one (wrong label offset)"),
    M("val-date", "trainer/validation.py", "blocked = seen_songs | future", "blocked = seen_songs",
      VALIDATION, "validation ignores the release-date filter"),
    M("val-pad-future", "trainer/validation.py",
      "songs, short = pad_popular(first_survivors(song_logits, blocked, SONGS_SEARCH, SONGS_KEEP)[1], blocked)",
      "songs, short = pad_popular(first_survivors(song_logits, blocked, SONGS_SEARCH, SONGS_KEEP)[1], seen_songs)",
      VALIDATION, "validation pads short lists with future songs (the README says it skips them)"),
    M("gelu-exact", "models/layers.py",
      'ACTIVATIONS = {"gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "relu": F.relu}',
      'ACTIVATIONS = {"gelu_tanh": lambda x: F.gelu(x), "relu": F.relu}', MODELS, "exact GELU in model 1"),
    M("model2-gelu", "models/plylst_title.py",
      'self.encoder = Encoder(c.d_model, c.n_layers, c.n_heads, c.d_ff, c.dropout, "relu")',
      'self.encoder = Encoder(c.d_model, c.n_layers, c.n_heads, c.d_ff, c.dropout, "gelu_tanh")', MODELS,
      "GELU instead of ReLU in model 2"),
    M("ln-eps", "models/layers.py", "LN_EPS = 1e-12  # tf.contrib.layers.layer_norm's epsilon",
      "LN_EPS = 1e-5", MODELS, "LayerNorm epsilon 1e-5"),
    M("model2-table-scale", "models/plylst_title.py",
      "return (table, h * scale if scale != 1.0 else h, [(0, c.n_songs), (c.n_songs, c.n_songs + c.n_tags)],",
      "return (table, h, [(0, c.n_songs), (c.n_songs, c.n_songs + c.n_tags)],", MODELS,
      "model 2's table dropout without its 1/(1-p) scale"),
    M("title-lower", "data_loader/title.py", 'return _NOT_KEPT.sub(" ", title).strip().lower()',
      'return _NOT_KEPT.sub(" ", title).strip()', TITLES, "titles not lowercased"),
    M("title-ampersand", "data_loader/title.py", '_NOT_KEPT = re.compile(r"[^가-힣a-zA-Z0-9& ]+")',
      '_NOT_KEPT = re.compile(r"[^가-힣a-zA-Z0-9 ]+")', TITLES, "'&' removed from titles"),
    M("title-jamo", "data_loader/title.py", '_NOT_KEPT = re.compile(r"[^가-힣a-zA-Z0-9& ]+")',
      '_NOT_KEPT = re.compile(r"[^가-힣ㄱ-ㅣa-zA-Z0-9& ]+")', TITLES, "jamo (ㅋㅋ) kept in titles"),
    M("sp-unigram", "data_loader/title.py", 'character_coverage=0.9995, model_type="bpe", '
      'user_defined_symbols=list(TITLE_SPECIALS),', 'character_coverage=0.9995, model_type="unigram", '
      'user_defined_symbols=list(TITLE_SPECIALS),', TITLES, "a unigram SentencePiece model"),
    M("sp-coverage", "data_loader/title.py", 'character_coverage=0.9995, model_type="bpe", '
      'user_defined_symbols=list(TITLE_SPECIALS),', 'character_coverage=1.0, model_type="bpe", '
      'user_defined_symbols=list(TITLE_SPECIALS),', TITLES, "SentencePiece character coverage 1.0"),
    M("sp-no-fallback", "data_loader/title.py", "if not m:", "if True:", TITLES,
      "no small-corpus fallback"),
    M("sp-no-warning", "data_loader/title.py", "warning = (f\"SentencePiece: the title corpus supports at "
      "most {m.group(1)} pieces, \"", "warning = (f\"\"", TITLES, "the fallback's warning does not say the size"),
    M("encode-drops-song-0", "data_loader/encode.py", "keep = labels >= 0", "keep = labels > 0", TITLES,
      "encoding drops the most popular song (label 0)"),
    M("artists-first-only", "data_loader/encode.py",
      "per_song = vocab.song_artists.lengths()[songs.values]",
      "per_song = vocab.song_artists.lengths()[songs.values].clip(max=1)", TITLES,
      "artists_csr keeps one artist per song"),
    M("resume-epoch-done", "trainer/loop.py", "position = (si, epoch + 1, 0, True)",
      "position = (si, epoch, 0, True)", TRAINER, "resume after a finished epoch repeats it"),
    M("resume-rng", "trainer/loop.py", 'torch.set_rng_state(rng["torch"].cpu())', "pass",
      TRAINER, "resume does not restore the random state"),
    M("cli-title-importance", "predictor/ensembling.py",
      'title_importance=(title_importance > 0, "> 0 (a title-only question has n = 0)"),',
      'title_importance=(True, "> 0 (a title-only question has n = 0)"),', ("tests/test_entry_errors.py",),
      "Ensemble.py --title_importance=0 reaches the weight rules (a traceback)"),
    M("cli-preset", "data_loader/make_sample_dataset.py",
      "raise UsageError(f\"--preset must be one of {', '.join(PRESETS)}, got {preset!r}\")", "pass",
      ("tests/test_entry_errors.py",), "make_sample_dataset.py --preset=huge fails in generate (a traceback)"),
    M("atomic-leaves-temp", "common/jsonio.py", "os.unlink(tmp)", "pass",
      ("tests/test_atomic_writes.py",), "a failed write leaves its temporary file"),
    M("atomic-in-place", "common/jsonio.py", "yield tmp", "yield path",
      ("tests/test_atomic_writes.py",), "writes go straight to the target"),
    M("knn-idf", "baselines/playlist_knn.py",
      "idf = np.log(x.shape[0] / np.maximum(np.asarray(x.sum(0)).ravel(), 1)).astype(np.float32)  # [size]",
      "idf = np.log1p(x.shape[0] / np.maximum(np.asarray(x.sum(0)).ravel(), 1)).astype(np.float32)  # [size]",
      ("tests/test_baselines.py",), "playlist-kNN IDF log(1 + P/df)"),
    M("knn-cosine", "baselines/playlist_knn.py",
      "norms = np.sqrt(np.asarray(m.multiply(m).sum(1)).ravel())", "norms = np.asarray(m.multiply(m).sum(1)).ravel()",
      ("tests/test_baselines.py",), "playlist-kNN rows divided by the squared norm"),
    # ---- further mutations: models, losses, samplers, walk, blend, validation, metric ---------------------------
    M("attention-no-key-mask", "models/layers.py",
      "out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :],",
      "out = F.scaled_dot_product_attention(q, k, v, attn_mask=None,", MODELS, "padded keys are attended to"),
    M("attention-scale", "models/layers.py", "dropout_p=self.dropout if self.training else 0.0)",
      "dropout_p=self.dropout if self.training else 0.0, scale=1.0 / (d // h))", MODELS,
      "attention scores divided by d/h instead of sqrt(d/h)"),
    M("model1-table-scale", "models/songs_tags_artists.py",
      "return table, h * scale if scale != 1.0 else h, bounds, biases",
      "return table, h, bounds, biases", MODELS, "model 1's tied heads without the 1/(1-p) scale"),
    M("model2-no-emb-scale", "models/plylst_title.py",
      "emb = F.embedding(ids, self.bpe_embedding) * math.sqrt(self.config.d_model) \\",
      "emb = F.embedding(ids, self.bpe_embedding) \\", MODELS,
      "model 2 without the sqrt(d) scale (model 1's is undone by LN(emb): an equivalent mutation there)"),
    M("model2-no-positions", "models/plylst_title.py", "+ self.position_embedding[: ids.shape[1]]  # [B, L, d]",
      "+ 0 * self.position_embedding[: ids.shape[1]]", MODELS, "model 2 without position embeddings"),
    M("model2-tag-head-from-song-cls", "models/plylst_title.py", "h = self.hidden(ids, n_out=2)  # [B, 2, d]",
      "h = self.hidden(ids, n_out=2)[:, [0, 0]]  # [B, 2, d]", MODELS, "model 2 scores tags from the songs cls"),
    M("encoder-no-emb-ln", "models/layers.py", "x = self.ln_emb(emb)", "x = emb", MODELS,
      "no LayerNorm on the embeddings"),
    M("bce-mean-over-batch", "models/layers.py",
      "return (F.softplus(logits).sum() - logits[rows, cols].sum()) / logits.numel()",
      "return (F.softplus(logits).sum() - logits[rows, cols].sum()) / logits.shape[0]", MODELS,
      "BCE summed over the vocabulary instead of averaged"),
    M("ranking-top-k-mean", "models/layers.py", "return term.sum() / x.numel()", "return term.mean()", MODELS,
      "ranking term averaged over the top 100 instead of batch x vocabulary"),
    M("ranking-top-50", "models/layers.py",
      "def top100_ranking_term(logits: torch.Tensor, targets: torch.Tensor, k: int = 100,",
      "def top100_ranking_term(logits: torch.Tensor, targets: torch.Tensor, k: int = 50,",
      MODELS, "ranking term over the top 50"),
    M("mlm-no-smoothing", "models/plylst_title.py",
      "label_smoothing: float = 0.1  # MLM target 0.9 + 0.1/V on the true piece, 0.1/V elsewhere",
      "label_smoothing: float = 0.0", MODELS, "MLM without label smoothing"),
    M("tags-loss-weight", "models/songs_tags_artists.py", "tags_loss_weight: float = 0.15",
      "tags_loss_weight: float = 0.2", MODELS, "model 1's tag loss weight 0.2"),
    M("sampler-max-tags", "data_loader/songs_tags_artists_data.py",
      "MAX_TAGS = 5  # val_test_max_tags", "MAX_TAGS = 4", ("tests/test_samplers.py",),
      "denoising samples at most 4 tags"),
    M("sampler-max-songs", "data_loader/songs_tags_artists_data.py",
      "MAX_SONGS = 100  # val_test_max_songs: a question shows at most 100 songs", "MAX_SONGS = 90",
      ("tests/test_samplers.py",), "denoising samples at most 90 songs"),
    M("sampler-lo-rule", "data_loader/songs_tags_artists_data.py",
      "k_songs = random_ints(rng, (n_tags == 0).astype(np.int64), np.minimum(n_songs, self.max_songs))",
      "k_songs = random_ints(rng, np.zeros_like(n_tags), np.minimum(n_songs, self.max_songs))",
      ("tests/test_samplers.py",), "denoising may sample no song of a tagless playlist"),
    M("mlm-mask-rate", "data_loader/plylst_title_data.py", "MASK_PROB = 15  # percent: randint(1, 100) <= 15",
      "MASK_PROB = 20", ("tests/test_samplers.py",), "MLM selects 20% of the pieces"),
    M("mlm-random-share", "data_loader/plylst_title_data.py",
      "new = np.where(action <= 8, MASK, np.where(action == 9, random_id, pieces.values))",
      "new = np.where(action <= 7, MASK, np.where(action <= 9, random_id, pieces.values))",
      ("tests/test_samplers.py",), "MLM 70/20/10 instead of 80/10/10"),
    M("walk-seen-kept", "trainer/candidates.py", "drop[seen[0], seen[1]] = True", "pass", CANDIDATES,
      "filtered_topk keeps seen items"),
    M("blend-title-share", "predictor/ensembling.py", "return title_importance / (title_importance + n)",
      "return 1.0 / (title_importance + n)", ENSEMBLE, "title model's song weight 1/(0.85+n)"),
    M("blend-unstable", "predictor/blend.py",
      "top = torch.sort(key, dim=1, descending=True, stable=True).indices[:, :k]",
      "top = torch.flip(torch.sort(torch.flip(key, [1]), dim=1, descending=True, stable=True).indices, [1])"
      "[:, :k]", ENSEMBLE, "equal blended scores in reverse insertion order"),
    M("fill-ignores-dates", "predictor/ensembling.py", "songs, short_songs = fill_first_allowed(songs, banned)",
      "songs, short_songs = fill_first_allowed(songs, seen_songs)", ENSEMBLE,
      "the ensemble fills with songs issued after the playlist's date"),
    M("val-keep-order", "trainer/validation.py", "for pid, s, t in zip(q.ids, song_idx, tag_idx)]",
      "for pid, s, t in zip(q.ids, song_idx[:, ::-1], tag_idx)]", VALIDATION, "validation scores its list reversed"),
    M("val-loss-targets", "trainer/validation.py", "songs, tags = hstack([q_songs, a_songs]), hstack([q_tags, a_tags])",
      "songs, tags = a_songs, a_tags", VALIDATION, "validation loss targets without the question's items"),
    M("metric-idcg-cap", "common/metric.py", "IDCG = [_discount_sum(length) for length in range(N_SONGS + 1)]  "
      "# IDCG[n] for answers of n items, n = 0..100", "IDCG = [_discount_sum(min(length, 10)) for length in "
      "range(N_SONGS + 1)]", ("tests/test_evaluate.py",), "IDCG capped at 10 items"),
    M("metric-log2", "common/metric.py", "total += 1.0 / math.log(i + 2)", "total += 1.0 / math.log2(i + 2)",
      ("tests/test_evaluate.py",), "IDCG discounted by log2"),
    M("metric-weights", "common/arena.py", "SONG_WEIGHT = 0.85  # the score's weights of song and tag nDCG",
      "SONG_WEIGHT = 0.8", ("tests/test_evaluate.py",), "score = 0.8 song + 0.15 tag"),
    M("stage-ranking-from-40", "trainer/loop.py", "ranking_from_epoch: int | None = 50  # the ranking term is on "
      "from this epoch of the stage; None: never", "ranking_from_epoch: int | None = 40", TRAINER,
      "the ranking term from epoch 40"),
    M("stage-valid-every-4", "trainer/loop.py", "valid_every: int = 5", "valid_every: int = 4", TRAINER,
      "validation every 4 epochs"),
    M("patience-40", "trainer/loop.py", "patience: int = 50  # epochs without a better score before early stopping",
      "patience: int = 40", TRAINER, "early stopping after 40 epochs"),
    M("val-scores-every-question", "trainer/validation.py", "rows = np.flatnonzero(model.accepts(questions))",
      "rows = np.arange(len(questions))", VALIDATION, "validation also scores questions the model does not answer"),
    M("blend-model1-tag-weight", "predictor/ensembling.py",
      '"songs_tags_artists": (functools.partial(items_share, title_importance=title_importance), 1.0),',
      '"songs_tags_artists": (functools.partial(items_share, title_importance=title_importance), 0.9),', ENSEMBLE,
      "model 1's tag scores weighted 0.9"),
    M("keep-mask-rate", "models/layers.py", "threshold = -(2**31) + round(p * 2**32)",
      "threshold = -(2**31) + round(p * 2**31)", MODELS, "dropout masks drop p/2 instead of p"),
    M("mlm-select-14", "data_loader/plylst_title_data.py", "selected = rng.integers(1, 101, nnz) <= MASK_PROB",
      "selected = rng.integers(1, 101, nnz) < MASK_PROB", ("tests/test_samplers.py",), "MLM selects 14% of pieces"),
    M("issue-date-zero-kept", "data_loader/issue_dates.py",
      "strange = (dates[labels] == 0) | (dates[labels] > occ_updt)", "strange = dates[labels] > occ_updt",
      ("tests/test_dump_datasets.py",), "songs dated 0 keep date 0 (never filtered) instead of being corrected"),
    M("walk-logits-not-probabilities", "trainer/candidates.py",
      "probs = torch.sigmoid(torch.gather(top_logits, 1, order)) * ok",
      "probs = torch.gather(top_logits, 1, order) * ok", CANDIDATES + ENSEMBLE,
      "candidates scored by logits instead of sigmoid probabilities"),
    M("val-loss-unweighted", "trainer/validation.py", "loss_sum += float(plain) * (b - a)",
      "loss_sum += float(plain) * bs", VALIDATION, "validation loss weighs a short last batch as a full one"),
    M("early-stop-on-equal", "trainer/loop.py", "improved = best_score is None or score > best_score",
      "improved = best_score is None or score >= best_score", TRAINER, "an equal score counts as an improvement"),
    M("adam-priming-resets-moments", "trainer/adam_tf1.py", "if not optimizer.state[p]:", "if True:", TRAINER,
      "a new stage zeroes the Adam moments of parameters already trained"),
    # ---- the TF1 Adam, the distributed loss scale, the item-CF locality exponent, booleans as words -----------
    M("adam-torch-eps", "trainer/adam_tf1.py",
      'group["eps"] = group["tf_eps"] / math.sqrt(1.0 - group["betas"][1] ** group["tf_step"])',
      'group["eps"] = group["tf_eps"]', ("tests/test_reliability_trainer.py",),
      "torch's epsilon placement instead of TF1's"),
    M("ddp-loss-unscaled", "trainer/loop.py", "loss, plain = loss * (share * self.dist.world_size), plain * share",
      "loss, plain = loss * share, plain * share", ("tests/test_distributed.py",),
      "each rank's loss not multiplied by the world size: half the update on 2 ranks"),
    M("item-cf-no-locality", "baselines/item_cf.py", "w.data **= self.theta", "pass", ("tests/test_peers.py",),
      "item_cf ignores theta"),
    M("cli-bool-words", "common/cli.py", "return raw.lower() in TRUE", "return bool(raw)", ("tests/test_cli.py",),
      "--resume=false means True"),
    M("sp-model-records-temp-path", "data_loader/title.py", "input=corpus.name, model_prefix=str(model_prefix."
      "relative_to(corpus.parent)), vocab_size=vocab_size,", "input=str(corpus), model_prefix=str(model_prefix), "
      "vocab_size=vocab_size,", TITLES, "the .model file records its temp folder: every step-1 re-run orphans model 2"),
    M("resume-defaults", "trainer/run_dir.py", "if not given.get(\"resume\"):", "if True:",
      ("tests/test_reliability_trainer.py",), "--resume alone takes the defaults, not the run's recorded flags"),
)


# ----------------------------------------------------------------------------------------------------------------


def copy_tree(dest: Path) -> None:
    """The repository's tracked and untracked-but-not-ignored files, copied to `dest`."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def locate(tree: Path, m: Mutation) -> tuple[list[str], int]:
    """(the file's lines, the index of the mutated line); UsageError unless the line occurs exactly once."""
    lines = (tree / m.path).read_text(encoding="utf-8").splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.strip() == m.original]
    if len(hits) != 1:
        raise UsageError(f"mutation {m.id}: {m.path} has the line {m.original!r} {len(hits)} times, not once")
    return lines, hits[0]


def pytest_command(tests: tuple[str, ...], full: bool) -> list[str]:
    base = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    return base if full else base + ["-m", "not slow", *tests]


def run_tests(tree: Path, tests: tuple[str, ...], full: bool, timeout: int) -> tuple[str, str, float]:
    """(outcome "passed" / "failed" / "timeout" / "error N", first failing test, seconds) of the tests in `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    start = time.perf_counter()
    try:
        proc = subprocess.run(pytest_command(tests, full), cwd=tree, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", "", time.perf_counter() - start
    seconds = time.perf_counter() - start
    first = next((re.sub(r"\[.*", "[...]", line.split(" ", 1)[1].split(" - ")[0]) for line in proc.stdout.splitlines()
                  if re.match(r"^(FAILED|ERROR) ", line)), "")  # parameters cut: they may hold any text
    outcome = {0: "passed", 1: "failed"}.get(proc.returncode, f"error {proc.returncode}")
    if proc.returncode not in (0, 1) and not first:  # a collection error or no test: say what pytest said last
        first = ((proc.stdout + proc.stderr).strip().splitlines() or [""])[-1]
    return outcome, first, seconds


def check_one(tree: Path, m: Mutation, full: bool, timeout: int) -> tuple[Mutation, str, str, float]:
    lines, i = locate(tree, m)
    original = lines[i]
    indent = original[: len(original) - len(original.lstrip())]
    ending = "\n" if original.endswith("\n") else ""
    path = tree / m.path
    path.write_text("".join(lines[:i] + [indent + m.replacement + ending] + lines[i + 1:]), encoding="utf-8")
    try:
        outcome, first, seconds = run_tests(tree, m.tests, full, timeout)
    finally:
        path.write_text("".join(lines), encoding="utf-8")
    return m, outcome, first, seconds


def main(only: str | None = None, full: bool = False, jobs: int = 1, timeout: int = 900,
         list_only: bool = False) -> None:
    """Apply each mutation to a copy of the tree, run the tests, print which the tests catch.

    Args:
        only: comma-separated mutation ids to run (default: all).
        full: run the whole default suite (as CI does) for every mutation instead of the tests named with it.
        jobs: mutations checked at the same time, each in its own copy of the tree.
        timeout: seconds allowed to one test run; a timeout counts as not caught.
        list_only: print the mutations and exit.
    """
    ids = [x for x in (only or "").split(",") if x]
    known = {m.id for m in MUTATIONS}
    check_flags(only=(set(ids) <= known, f"mutation ids among: {', '.join(sorted(known))}"),
                jobs=(jobs >= 1, "at least 1"), timeout=(timeout >= 1, "at least 1 second"))
    chosen = [m for m in MUTATIONS if not ids or m.id in ids]
    if list_only:
        for m in chosen:
            print(f"{m.id:32s} {m.path}: {m.what}")
        return
    with tempfile.TemporaryDirectory(prefix="mutation_check.") as tmp:
        trees = [Path(tmp) / f"tree{j}" for j in range(min(jobs, len(chosen)))]
        for tree in trees:
            copy_tree(tree)
        for m in chosen:
            locate(trees[0], m)  # every line exists exactly once, before anything runs
        union = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        outcome, first, seconds = run_tests(trees[0], union, full, timeout)
        print(f"unmutated tree: {outcome} in {seconds:.0f}s ({'whole default suite' if full else ' '.join(union)})",
              flush=True)
        if outcome != "passed":
            print(f"error: the unmutated tests do not pass ({first}); fix that first", file=sys.stderr)
            sys.exit(1)
        free = list(trees)
        results = []

        def work(m: Mutation) -> tuple[Mutation, str, str, float]:
            tree = free.pop()
            try:
                r = check_one(tree, m, full, timeout)
            finally:
                free.append(tree)
            print(f"  {m.id}: {'caught' if r[1] == 'failed' else 'NOT caught (' + r[1] + ')'} ({r[3]:.0f}s)",
                  flush=True)
            return r

        with ThreadPoolExecutor(len(trees)) as pool:
            results = list(pool.map(work, chosen))
    rows = [f"| {m.id} | {m.path} | {m.what} | {'caught' if out == 'failed' else 'NOT caught: ' + out} | "
            f"{first} | {sec:.0f} |" for m, out, first, sec in results]
    print("\n| mutation | file | what it breaks | result | first failing test | s |\n|---|---|---|---|---|---:|")
    print("\n".join(rows))
    missed = [m.id for m, out, _, _ in results if out != "failed"]
    print(f"\n{len(results) - len(missed)} of {len(results)} mutations caught"
          + (f"; NOT caught: {', '.join(missed)}" if missed else ""))
    if missed:
        sys.exit(1)


if __name__ == "__main__":
    run_cli(main)
