#!/usr/bin/env bash
# On a CUDA machine: the CUDA tests and the GPU cases of every benchmark, within 8 minutes (7.8 at most, by the
# timeouts below), written to benchmarks/results/<gpu name>.txt, the CUDA tests' whole output
# to <gpu name>-cuda-tests.txt (commit both); then the `medium` pages that
# fit in REPLAB_MEDIUM_SECONDS (default 240; 0 skips them), recorded with `replab run-all --profile medium --record
# --stand-ins` into results/medium/ (commit that folder: the scorecard gets a `medium` column; pages whose paper
# datasets are not in REPLAB_DATA run on the offline stand-ins and every claim says so).
# Runs with the machine's python3 and PYTHONPATH=lib when the project's .venv is absent (pytest and papermill are
# then optional: wheels put in .wheels/ beforehand are installed beside the tree, else that part is skipped).
# REPLAB_RESULTS: another folder for the result file; REPLAB_MEDIUM_RESULTS: another folder for the medium records
# (default results/medium); REPLAB_COMMIT: the commit to record (a copied tree may carry a stale .git).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONPATH=lib${PYTHONPATH:+:$PYTHONPATH} REPLAB_QUIET=1
# a machine without the test tools: wheels downloaded beforehand into .wheels/ are installed beside the tree
if ! $PY -c "import pytest, papermill, jupytext" 2>/dev/null && [ -d .wheels ]; then
  $PY -m pip install --quiet --no-index --find-links .wheels --target .wheels/site pytest hypothesis pytest-timeout \
    papermill jupytext ipykernel >/dev/null 2>&1; export PYTHONPATH=$PYTHONPATH:.wheels/site
fi
results=${REPLAB_RESULTS:-benchmarks/results}
gpu=$($PY -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')")
if [ -z "$gpu" ]; then echo "gpu.sh: no CUDA device"; exit 2; fi
mkdir -p "$results"
out="$results/$(echo "$gpu" | tr ' /' '__').txt"
tests_log="${out%.txt}-cuda-tests.txt"
{
  echo "# $gpu, $(date -u +%Y-%m-%dT%H:%MZ), commit ${REPLAB_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  echo "## CUDA tests"
  if $PY -c "import pytest" 2>/dev/null; then
    # the whole output, tracebacks included, in a file of its own: a failure seen only on a GPU must be
    # diagnosable from what one run brought back
    timeout 100 $PY -m pytest -q -p no:cacheprovider --disable-warnings --continue-on-collection-errors -k "cuda or gpu" \
      --tb=short -rfEs tests/train tests/similarity tests/dpgmm tests/models tests/inversion 2>&1 \
      | sed -e "s|$PWD/||g" > "$tests_log"; tail -25 "$tests_log"; echo "(whole output: $tests_log)"
  else
    echo "pytest not installed here: CUDA tests skipped"
  fi
  echo "## training: stacked groups against sequential members"
  timeout 135 $PY benchmarks/training.py --stacked --device cuda 2>&1
  # the conv VAEs again at K = 32 with the layers under bfloat16 autocast (tensor cores for the grouped
  # convolutions): the conv VAE is the case short of its 20x in float32
  timeout 45 $PY benchmarks/training.py --stacked --device cuda --amp --k 32 --only conv 2>&1 | tail -n +2
  echo "## similarity"
  timeout 100 $PY benchmarks/similarity.py --scale 2>&1 | tail -25
  echo "## DP-GMM"
  timeout 45 $PY benchmarks/dpgmm.py --quick 2>&1 | tail -12
  echo "## PixelCNN++"
  timeout 45 $PY benchmarks/pixelcnn.py --quick --device cuda 2>&1 | tail -12
} 2>&1 | sed -e "s|$PWD/||g" | tee "$out"  # paths relative to the repository
echo "gpu.sh: wrote $out"

medium_seconds=${REPLAB_MEDIUM_SECONDS:-240}
medium_results=${REPLAB_MEDIUM_RESULTS:-results/medium}
if [ "$medium_seconds" -gt 0 ]; then
  if $PY -c "import papermill, jupytext, ipykernel" 2>/dev/null; then
    # a page started before the limit may run its 5 minutes: the outer timeout stops a page that overruns
    timeout $((medium_seconds + 330)) $PY -m replab.cli run-all --profile medium \
      --record --stand-ins --time-limit "$medium_seconds" --results "$medium_results" \
      --output-dir "${TMPDIR:-/tmp}/replab-medium" 2>&1 | sed -e "s|$PWD/||g" | tail -40
    echo "gpu.sh: medium records in $medium_results"
  else
    echo "gpu.sh: papermill, jupytext or ipykernel missing: the medium pages were not run"
  fi
fi
