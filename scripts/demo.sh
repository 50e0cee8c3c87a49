#!/usr/bin/env bash
# The README's first command: install, build, then a real (short) pretraining run on the bundled
# Shakespeare corpus with two MPI ranks on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only the tools the demo runs (t6_plot is a script the configure step copies), without the CUDA
# backend where no GPU is visible; the tests and benches build in scripts/test.sh, so the demo's
# first step comes minutes sooner on a fresh clone.
bash scripts/build.sh demo_tools

corpus=data/shakespeare
if [ ! -f "$corpus/index.json" ]; then
  build/bin/t6_preprocess --input data_tools/corpora/tinyshakespeare.jsonl --output "$corpus" --val-fraction 0.1 --overwrite
fi
# Open MPI refuses to run as root unless told that it is intended (containers, CI).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun -np 2 --oversubscribe build/bin/t6_pretrain --config configs/t6-demo.toml --run-dir runs/demo "$@"
# The curves of the run (train and validation loss, LR, throughput) as a picture.
build/bin/t6_plot runs/demo --out runs/demo/curves.png

# A few lines from the trained model, decoded with its factor cache.
build/bin/t6_generate --checkpoint runs/demo --prompt "ROMEO:" --max-new-tokens 60 --temperature 0.8 --top-k 40 --seed 1
# Its perplexity on the validation windows the trainer evaluated (eval.batches global batches):
# the mean loss must be the val_loss that t6_pretrain logged for the same weights.
latest=runs/demo/checkpoints/latest  # a symlink, or a file holding the step directory's name
[ -d "$latest" ] || latest="runs/demo/checkpoints/$(cat "$latest")"
windows=$(python3 -c 'import json, sys; c = json.load(open(sys.argv[1]))["config"]
print(c["eval"]["batches"] * c["train"]["global_batch_size"])' "$latest/manifest.json")
build/bin/t6_eval perplexity --checkpoint runs/demo --data "$corpus" --windows "$windows" | tee runs/demo/perplexity.json
python3 - runs/demo/perplexity.json runs/demo/metrics.jsonl <<'CHECK'
import json, math, sys
evaluated = json.load(open(sys.argv[1]))["mean_loss"]
last = [record for record in map(json.loads, open(sys.argv[2])) if "val_loss" in record][-1]
if not math.isclose(evaluated, last["val_loss"], rel_tol=1e-5):
    sys.exit(f"t6_eval's mean loss {evaluated} is not the val_loss {last['val_loss']} of step {last['step']}")
print(f"perplexity {math.exp(evaluated):.2f} = exp(val_loss {last['val_loss']:.6f} of step {last['step']})")
CHECK
