#!/usr/bin/env bash
# Fuzzes the model file reader (`Model::from_bytes`) with the structure-aware driver
# `fuzz-reader` (fuzz/, docs/fuzzing.md): EXECS cases (default 10 000 000) of run seed
# SEED (default 1), in chunks of CHUNK cases (default 1 000 000), one process after the
# other on one core. Reproducible: a case is named by (seed, case number) alone.
# Not part of CI (scripts/test.sh runs the 2000-case smoke test in fuzz/tests/).
#
#   bash scripts/fuzz.sh [EXECS]          # SEED=1 CHUNK=1000000 FINDINGS=fuzz/findings
#
# Prints the figures added up over the chunks and exits 1 if anything was found.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

execs=${1:-10000000}
execs=${execs//_/}
seed=${SEED:-1}
chunk=${CHUNK:-1000000}
findings=${FINDINGS:-fuzz/findings}
# Its own target directory, so that this long release build never waits on (or
# blocks) the cargo lock of the other builds.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-fuzz}

cargo build --quiet --profile fuzz -p dkp-fuzz
bin=$CARGO_TARGET_DIR/fuzz/fuzz-reader
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

echo "fuzz: $execs cases of seed $seed in chunks of $chunk on $(nproc) cores ($(uname -m)), findings in $findings/"
started=$SECONDS
crashed=0
for ((from = 0; from < execs; from += chunk)); do
  n=$((execs - from < chunk ? execs - from : chunk))
  out=$log/$from.txt
  if ! "$bin" --seed "$seed" --from "$from" --execs "$n" --findings "$findings" >"$out" 2>"$log/$from.err"; then
    # A crash the driver cannot catch (abort, stack overflow, a refused huge
    # allocation): the refusal names its case; otherwise rerun the chunk with a trace.
    crashed=$((crashed + 1))
    echo "fuzz: chunk $from..$((from + n)) crashed:"
    tail -n 5 "$log/$from.err"
    if ! grep -q '^FINDING refused' "$log/$from.err"; then
      "$bin" --seed "$seed" --from "$from" --execs "$n" --findings "$findings" --trace 2>"$log/trace.err" >/dev/null || true
      echo "fuzz: last case started: $(grep '^case ' "$log/trace.err" | tail -n 1) (replay with: $bin --seed $seed --replay N)"
    fi
    continue
  fi
  grep '^SUMMARY' "$out" | sed "s/^/fuzz: chunk $from: /"
done

# Add up the chunks' last lines: rejections by error variant, then the totals.
grep -h '^ERR' "$log"/*.txt | awk '{ n[$2] += $3 } END { for (e in n) printf "fuzz:   Err(%s) %d\n", e, n[e] }' | sort
cat "$log"/*.txt | awk -v crashed="$crashed" -v wall=$((SECONDS - started)) '
  /^SUMMARY/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); sum[kv[1]] += kv[2] } }
  /^MAXPEAK/ { split($2, p, "="); if (p[2] + 0 > maxpeak) { maxpeak = p[2] + 0; peakcase = $3 } }
  /^MAXRATIO/ { split($2, p, "="); if (p[2] + 0 > maxratio) { maxratio = p[2] + 0; ratiocase = $3 } }
  /^MAXWITHIN/ { split($2, p, "="); if (p[2] + 0 > maxwithin) { maxwithin = p[2] + 0; withincase = $3 } }
  /^MAXUSE/ { split($2, p, "="); if (p[2] + 0 > maxuse) { maxuse = p[2] + 0; usecase = $3 } }
  /^FINDING/ { n = $2; key = $0; sub(/^FINDING [0-9]+ first_case=[0-9]+ /, "", key); found[key] += n }
  END {
    printf "fuzz: %d cases in %.0f s of fuzzing (%.0f cases/s; %d s wall after the build), %d accepted\n", sum["execs"], sum["secs"], sum["execs"] / sum["secs"], wall, sum["accepted"]
    printf "fuzz: panics %d, over-bound allocations %d, defects after loading %d, crashes %d\n", sum["panics"], sum["overbound"], sum["afterload"], crashed
    printf "fuzz: largest peak heap %d bytes (%s); largest peak/input %.1fx (%s), %.1fx among inputs of 100 kB or more within the bound (%s); closest to the bound %.1f%% (%s)\n", maxpeak, peakcase, maxratio, ratiocase, maxwithin, withincase, 100 * maxuse, usecase
    for (k in found) printf "fuzz: FINDING %s (%d cases)\n", k, found[k]
    if (sum["panics"] + sum["overbound"] + sum["afterload"] + crashed > 0) exit 1
  }'
