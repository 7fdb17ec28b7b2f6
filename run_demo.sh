#!/usr/bin/env bash
# The whole pipeline on the demo sample, about ten minutes on 2 CPU cores (less on a GPU):
# generate -> step 1 dump -> step 2/3 train both models (time-boxed) -> step 4 ensemble -> step 5 evaluate
# -> hybrid weight search -> leaderboard.
#
#   bash run_demo.sh                      # defaults below; override e.g. MINUTES=10 bash run_demo.sh
#
# Everything goes under demo/, never into dataset/ (the folder for the real Melon files); step 0 replaces only files
# it wrote itself.
#
# The demo keeps every default of the original except two that only make sense for hours-long runs: the Noam warmup
# (4000 steps is ~70 demo epochs; 300 steps is ~5 epochs, the original's ratio) and model 2's 100 MLM epochs.
set -euo pipefail
cd "$(dirname "$0")"
DATA=${DATA:-demo/dataset}     # where the sample and the split go
OUT=${OUT:-demo/output}        # dumps, run folders, leaderboard
RESULTS=${RESULTS:-demo/reco_result}  # the ensemble's results files
MINUTES=${MINUTES:-4}          # time box per model
WARMUP=${WARMUP:-300}
MLM_EPOCHS=${MLM_EPOCHS:-3}

python data_loader/make_sample_dataset.py --out_dir="$DATA" --preset=demo
# --overwrite: a rerun of the demo trains anew; earlier demo runs are moved aside (demo/output/<run>.replaced-<time>)
python train.py --dataset_dir="$DATA" --output_dir="$OUT" --max_minutes="$MINUTES" \
    --warmup_steps="$WARMUP" --mlm_epochs="$MLM_EPOCHS" --overwrite
python predictor/Ensemble.py --dataset_dir="$DATA" --output_dir="$OUT" \
    --question_path="$DATA/questions/val.json" --out_path="$RESULTS/results.json"
python evaluate.py evaluate --gt_fname="$DATA/answers/val.json" --rec_fname="$RESULTS/results.json" \
    --question_fname="$DATA/questions/val.json"
python -m predictor.search_weights --dataset_dir="$DATA" --output_dir="$OUT"
python -m reports.leaderboard --dataset_dir="$DATA" --output_dir="$OUT"
python inference.py --dataset_dir="$DATA" --output_dir="$OUT" --out_path="$RESULTS/test_results.json"
python inference.py --dataset_dir="$DATA" --output_dir="$OUT" --weights="$OUT/ensemble_weights.json" \
    --out_path="$RESULTS/test_results_hybrid.json"

cat <<DONE

Done. Where things are:
  $DATA/                      the sample (train/val/test.json, song_meta.json) and the local split (orig/, questions/, answers/)
  $OUT/dumps/                 vocabularies, SentencePiece model, tensors (step 1)
  $OUT/songs_tags_artists/    model 1 run: log.txt, config.json, best.pt, last.pt
  $OUT/plylst_title/          model 2 run: log.txt, config.json, best.pt, last.pt
  $RESULTS/results.json       ensemble answers to $DATA/questions/val.json (scored above)
  $RESULTS/test_results.json  ensemble answers to $DATA/test.json (inference.py)
  $OUT/ensemble_weights.json  the hybrid ensemble's weights per question type (predictor/search_weights.py)
  $RESULTS/test_results_hybrid.json  hybrid answers to $DATA/test.json (inference.py --weights)
  $OUT/leaderboard.md         every method on the same split and metric, overall and by question type
  $OUT/leaderboard.png        the same as a bar chart

Leaderboard ($OUT/leaderboard.md; hybrid_heldout: each half of the questions answered with weights searched on the other):
DONE
if [ -f "$OUT/leaderboard.md" ]; then sed -n '/^| method | questions/,/^$/p' "$OUT/leaderboard.md"; fi
