#!/usr/bin/env bash
# The whole pipeline on the demo sample, about ten minutes on 2 CPU cores (less on a GPU):
# generate -> step 1 dump -> step 2/3 train both models (time-boxed) -> step 4 ensemble -> step 5 evaluate
# -> hybrid weight search -> leaderboard.
#
#   bash run_demo.sh                      # defaults below; override e.g. MINUTES=10 bash run_demo.sh
#
# The demo keeps every default of the original except two that only make sense for hours-long runs: the Noam warmup
# (4000 steps is ~70 demo epochs; 300 steps is ~5 epochs, the original's ratio) and model 2's 100 MLM epochs.
set -euo pipefail
cd "$(dirname "$0")"
DATA=${DATA:-dataset}          # where the sample and the split go
OUT=${OUT:-output}             # dumps, run folders, leaderboard
MINUTES=${MINUTES:-4}          # time box per model
WARMUP=${WARMUP:-300}
MLM_EPOCHS=${MLM_EPOCHS:-3}

python data_loader/make_sample_dataset.py --out_dir="$DATA" --preset=demo
python train.py --dataset_dir="$DATA" --output_dir="$OUT" --max_minutes="$MINUTES" \
    --warmup_steps="$WARMUP" --mlm_epochs="$MLM_EPOCHS"
python predictor/Ensemble.py --dataset_dir="$DATA" --output_dir="$OUT" \
    --question_path="$DATA/questions/val.json" --out_path=reco_result/results.json
python evaluate.py evaluate --gt_fname="$DATA/answers/val.json" --rec_fname=reco_result/results.json \
    --question_fname="$DATA/questions/val.json"
python -m predictor.search_weights --dataset_dir="$DATA" --output_dir="$OUT"
python -m baselines.leaderboard --dataset_dir="$DATA" --output_dir="$OUT"
python inference.py --dataset_dir="$DATA" --output_dir="$OUT" --out_path=reco_result/test_results.json
python inference.py --dataset_dir="$DATA" --output_dir="$OUT" --weights="$OUT/ensemble_weights.json" \
    --out_path=reco_result/test_results_hybrid.json

cat <<DONE

Done. Where things are:
  $DATA/                      the sample (train/val/test.json, song_meta.json) and the local split (orig/, questions/, answers/)
  $OUT/dumps/                 vocabularies, SentencePiece model, tensors (step 1)
  $OUT/songs_tags_artists/    model 1 run: log.txt, config.json, best.pt, last.pt
  $OUT/plylst_title/          model 2 run: log.txt, config.json, best.pt, last.pt
  reco_result/results.json    ensemble answers to $DATA/questions/val.json (scored above)
  reco_result/test_results.json  ensemble answers to $DATA/test.json (inference.py)
  $OUT/ensemble_weights.json  the hybrid ensemble's weights per question type (predictor/search_weights.py)
  reco_result/test_results_hybrid.json  hybrid answers to $DATA/test.json (inference.py --weights)
  $OUT/leaderboard.md         every method on the same split and metric, overall and by question type
  $OUT/leaderboard.png        the same as a bar chart

Leaderboard ($OUT/leaderboard.md; hybrid_heldout: each half of the questions answered with weights searched on the other):
DONE
sed -n '/^| method | questions/,/^$/p' "$OUT/leaderboard.md"
