"""Step 4: recommend 100 songs and 10 tags for every question with the two-model ensemble (docs/original.md 4).

The original's entry-point name; the logic is in predictor/ensembling.py. With --weights, the hybrid ensemble of a
weights file from predictor/search_weights.py answers instead (predictor/hybrid.py); with --seeds, each model of the
original blend is the soft vote of its seed runs {model}_seed{s} (train.py --seeds).

    python predictor/Ensemble.py [--bs=128] [--gpu=0] [--title_importance=0.85] [--title_tag_weight=0.8] \\
        [--question_path={dataset_dir}/val.json] [--out_path=./reco_result/results.json] \\
        [--dataset_dir=dataset] [--output_dir=output] [--amp] [--weights=output/ensemble_weights.json] [--seeds=0,1,2]
"""
from __future__ import annotations

from pathlib import Path

from common.cli import UsageError, check_flags, run_cli
from predictor.ensembling import TITLE_IMPORTANCE, TITLE_TAG_WEIGHT, run_ensemble
from predictor.hybrid import run_hybrid


def main(bs: int = 128, gpu: int | None = None, title_importance: float = TITLE_IMPORTANCE,
         title_tag_weight: float = TITLE_TAG_WEIGHT, question_path: str | None = None,
         out_path: str = "./reco_result/results.json", dataset_dir: str = "dataset", output_dir: str = "output",
         amp: bool = False, weights: str | None = None, seeds: list[int] | None = None) -> None:
    """Write results.json for a question file.

    Args:
        bs: questions per batch.
        gpu: CUDA device; -1 = CPU; unset = cuda:0 when there is one, else the CPU.
        title_importance: model 2's song share is title_importance / (title_importance + n), n = #songs + #tags.
        title_tag_weight: weight of model 2's tag scores (model 1's are weighted 1).
        question_path: the question file (official schema; songs, tags and title may be empty); default
            {dataset_dir}/val.json, the original's ./dataset/val.json.
        out_path: where results.json goes (written atomically).
        dataset_dir: the dataset folder: where the default question file is.
        output_dir: the folder holding dumps/ and the run folders songs_tags_artists/, plylst_title/ with best.pt.
        amp: bf16 autocast for the forward passes (CUDA only).
        weights: a weights file (predictor/search_weights.py): answer with that hybrid ensemble instead of the
            original blend; its baseline members read {dataset_dir}/orig/train.json (and song_meta.json if present).
        seeds: average each model's probabilities over its seed runs {model}_seed{s} (e.g. 0,1,2) before the blend;
            default the single run folder of each model. With --weights the file names the seeds.
    """
    question_path = question_path or str(Path(dataset_dir) / "val.json")
    check_flags(seeds=(seeds is None or (len(seeds) > 0 and len(set(seeds)) == len(seeds) and min(seeds) >= 0),
                       "distinct seeds >= 0, e.g. 0,1,2"))
    if weights is not None:
        given = [f"--{k}" for k, v, default in (("title_importance", title_importance, TITLE_IMPORTANCE),
                                                ("title_tag_weight", title_tag_weight, TITLE_TAG_WEIGHT),
                                                ("seeds", seeds, None)) if v != default]
        if given:
            raise UsageError(f"{', '.join(given)}: only for the original blend; with --weights the weights file "
                             f"decides (its members, weights and seeds)")
        run_hybrid(weights, question_path, out_path, dataset_dir, output_dir, gpu, bs, amp)
        return
    run_ensemble(bs, gpu, title_importance, title_tag_weight, question_path, out_path, dataset_dir, output_dir, amp,
                 seeds=seeds)


if __name__ == "__main__":
    run_cli(main)
