"""Step 4 on the final questions: {dataset_dir}/test.json -> reco_result/results.json (the original's inference.py).

    python inference.py [--gpu=0] [--dataset_dir=dataset] [--output_dir=output] [--out_path=reco_result/results.json] \\
        [--weights=output/ensemble_weights.json] [--seeds=0,1,2]
"""
from __future__ import annotations

from pathlib import Path

from common.cli import run_cli
from predictor import Ensemble


def main(gpu: int | None = None, dataset_dir: str = "dataset", output_dir: str = "output",
         out_path: str = "reco_result/results.json", bs: int = 128, amp: bool = False, weights: str | None = None,
         seeds: list[int] | None = None) -> None:
    """Recommend for every playlist of {dataset_dir}/test.json with the ensemble of the two best checkpoints.

    Args:
        gpu: CUDA device; -1 = CPU; unset = cuda:0 when there is one, else the CPU.
        dataset_dir: holds test.json.
        output_dir: holds dumps/ and the two run folders with best.pt.
        out_path: the results file.
        bs: questions per batch.
        amp: bf16 autocast on CUDA.
        weights: answer with the hybrid ensemble of this weights file (predictor/search_weights.py) instead.
        seeds: the original blend over seed ensembles {model}_seed{s} (train.py --seeds).
    """
    Ensemble.main(bs=bs, gpu=gpu, question_path=str(Path(dataset_dir) / "test.json"), out_path=out_path,
                  dataset_dir=dataset_dir, output_dir=output_dir, amp=amp, weights=weights, seeds=seeds)


if __name__ == "__main__":
    run_cli(main)
