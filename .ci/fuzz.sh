#!/usr/bin/env bash
# Fuzzing fastreq with cargo-fuzz (nightly toolchain): builds the targets of fuzz/ and runs
# each for FUZZ_SECONDS (default 30) from its seed corpus in fuzz/corpus/<target>, with an
# RSS limit and a per-input timeout. Any crash, panic, leak, timeout or out-of-memory fails
# the script; the input is left in fuzz/artifacts/<target>/ (reproduce it with
# `cargo +nightly fuzz run <target> <file>`). New inputs go to a scratch directory, never
# into the repository's corpus.
#
# Full-size run (an hour per target, on every core):
#   FUZZ_SECONDS=3600 FUZZ_JOBS=$(nproc) bash .ci/fuzz.sh
#
# Knobs: FUZZ_SANITIZER (address by default; `none` builds much faster and still catches
# every panic, overflow and hang — fastreq has no unsafe code — which is what CI uses),
# FUZZ_SECONDS, FUZZ_JOBS (libFuzzer -fork, default 1), FUZZ_RSS_MB (default 2048),
# FUZZ_TARGETS (space-separated, default all), FUZZ_KEEP_CORPUS=DIR (keep the grown
# corpus there).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_INCREMENTAL=0
export CARGO_TERM_COLOR=never
seconds="${FUZZ_SECONDS:-30}"
jobs="${FUZZ_JOBS:-1}"
rss_mb="${FUZZ_RSS_MB:-2048}"
targets="${FUZZ_TARGETS:-proxy_line retry_after input_line cookies redirect_location fetched_roundtrip}"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: the nightly toolchain is missing (cargo-fuzz needs it: rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

echo "== cargo fuzz build"
sanitizer="${FUZZ_SANITIZER:-address}"
cargo +nightly fuzz build -s "$sanitizer"

scratch="${FUZZ_KEEP_CORPUS:-$(mktemp -d)}"
[ -n "${FUZZ_KEEP_CORPUS:-}" ] || trap 'rm -rf "$scratch"' EXIT
summary=()
for target in $targets; do
  echo "== fuzz $target for ${seconds}s"
  mkdir -p "$scratch/$target" "fuzz/corpus/$target"
  log="$scratch/$target.log"
  flags=(-max_total_time="$seconds" -rss_limit_mb="$rss_mb" -timeout=10 -max_len=8192 -print_final_stats=1)
  if [ "$jobs" -gt 1 ]; then
    flags+=(-fork="$jobs")
  fi
  # The first corpus directory receives new inputs: the scratch one.
  if ! cargo +nightly fuzz run -s "$sanitizer" "$target" "$scratch/$target" "fuzz/corpus/$target" -- "${flags[@]}" \
      >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $target FAILED (input in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)"
  rate="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)"
  summary+=("$target: ${runs:-?} runs, ${rate:-?} exec/s, ${cov:-cov: ?}, no crash")
done
echo "== fuzz summary (${seconds}s per target)"
printf '  %s\n' "${summary[@]}"
