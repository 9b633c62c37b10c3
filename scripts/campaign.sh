#!/usr/bin/env bash
# The PTB campaign of docs/results.md: trains every experiments/*.toml that has no
# finished model yet, JOBS at a time (default 2: this machine has 2 cores), resuming any
# run that left a checkpoint. Safe to interrupt and rerun; logs go to runs/NAME.log.
#
#   bash scripts/campaign.sh                   # every experiment, in the order below
#   bash scripts/campaign.sh kp-25x lowrank-25x  # just these
#   JOBS=1 bash scripts/campaign.sh dkp-25x-2x650-nocmr pruned-25x-2x650  # one after the other
#
# At 2×650 it depends on the host (docs/benchmarks.md, "At the paper's scale"): where two
# vCPUs are one core's worth of arithmetic a run drops from ~1 090 tokens/s alone to ~435
# beside a second (use JOBS=1); on two real cores (lscpu: one thread per core) two runs
# keep ~900 each. Small models gain from running two at a time everywhere.
#
# Needs ../shared/data/ptb. Afterwards: python3 scripts/results.py --write docs/results.md
set -euo pipefail
cd "$(dirname "$0")/.."

# One block, which bash reads whole before running any of it: a campaign runs for hours,
# and bash otherwise reads a script as it goes, so editing this file under a running
# campaign would derail it.
{
    # The comparison first, then the ablations, the demo's whole-model variant, the 13-epoch
    # schedule (the dense baseline's budget) for the two best 25x methods, the second
    # whole-model variant, the paper's scale (2×650), HMD and doped HMD on the 13-epoch
    # schedule, DKP and pruning at 25x at 2×650, DKP with co-matrix dropout at 2×650 (per
    # element, on the whole term; their rate from the probe their configs describe), low
    # rank and plain KP at 2×650, DKP at 2×650 with its anneal moved early (epochs
    # 0.25–1.75), HMD and doped HMD at 2×650, DKP at 2×650 with a later, longer anneal
    # (epochs 1–5) and pruning on that anneal, both again with a second seed, doped HMD at
    # 2×650 with S at five times its factors' learning rate, DKP and pruning on the later
    # anneal distilled from the committed dense 2×650 and the dense 2×650 distilled from it
    # (their control), the whole model distilled from
    # a dense 2×650 snapshot (its teacher file must exist: docs/results.md, "The paper's
    # scale"), the character-level pair, the 2×650 whole model distilled from the same
    # teacher, the ≤ 1 MB whole model (CF 5/4) distilled from it too, then the ≤ 400 KB one
    # (CF 12/12) and the ≤ 2 MB one (2×400, CF 5/4) distilled from the committed dense
    # 2×650 (models/), then its control without a teacher; last, dense, DKP and pruning at
    # 2×650 on a 16-epoch budget (hours each: they resume across sessions), their distilled
    # pair, and DKP on the late anneal with dropout 0.3 instead of 0.5; then DKP distilled on
    # 16 epochs at that dropout and pruning beside it, and the 6-epoch controls at 0.3: dense
    # and pruning.
    ORDER=(dense-2x200 dkp-25x-cmr dkp-25x-nocmr pruned-25x lowrank-25x kp-25x
           dkp-10x-cmr dkp-25x-cmr-term dkp-25x-cmr-element-0.3 whole-model-1mb
           dkp-25x-nocmr-13ep pruned-25x-13ep whole-model-1mb-v2
           dense-2x650 hmd-25x-13ep dhmd-25x-13ep dkp-25x-2x650-nocmr pruned-25x-2x650
           dkp-25x-2x650-cmr-element dkp-25x-2x650-cmr-term
           lowrank-25x-2x650 kp-25x-2x650 dkp-25x-2x650-early
           hmd-25x-2x650 dhmd-25x-2x650 dkp-25x-2x650-late pruned-25x-2x650-late
           dkp-25x-2x650-late-seed2 pruned-25x-2x650-late-seed2 dhmd-25x-2x650-s5
           dkp-25x-2x650-late-distill pruned-25x-2x650-late-distill dense-2x650-distill
           whole-model-distill char-dense-2x384 char-whole-dkp-2x384 whole-model-2mb-2x650-distill
           whole-model-1mb-distill whole-model-400k-distill whole-model-2mb-distill whole-model-2mb
           dense-2x650-16ep dkp-25x-2x650-16ep pruned-25x-2x650-16ep
           dkp-25x-2x650-16ep-distill pruned-25x-2x650-16ep-distill dkp-25x-2x650-late-drop03
           dkp-25x-2x650-16ep-drop03-distill pruned-25x-2x650-16ep-drop03-distill
           dense-2x650-drop03 pruned-25x-2x650-late-drop03)
    if (($#)); then runs=("$@"); else runs=("${ORDER[@]}"); fi
    for name in "${runs[@]}"; do
        [[ -f experiments/$name.toml ]] || { echo "no experiments/$name.toml" >&2; exit 1; }
    done

    cargo build --release -p dkp-cli
    # A copy, so rebuilding while the campaign runs does not replace a running binary; put in
    # place by a rename, which a binary that an earlier campaign still runs does not prevent.
    mkdir -p runs/bin
    cp target/release/dkp runs/bin/dkp-campaign.new
    mv -f runs/bin/dkp-campaign.new runs/bin/dkp-campaign

    train() {
        local name=$1
        if [[ -f runs/$name/model.safetensors ]]; then
            echo "$name: done (runs/$name/model.safetensors)"
            return
        fi
        local resume=()
        [[ -f runs/$name/checkpoint.safetensors ]] && resume=(--resume)
        echo "$name: training ${resume[*]:-from scratch}, log runs/$name.log"
        runs/bin/dkp-campaign train --config "experiments/$name.toml" "${resume[@]}" >>"runs/$name.log" 2>&1 \
            && echo "$name: finished" || echo "$name: FAILED (see runs/$name.log)"
    }
    export -f train
    printf '%s\n' "${runs[@]}" | xargs -P "${JOBS:-2}" -I{} bash -c 'train {}'
    exit
}
