#!/usr/bin/env bash
# Runs each libFuzzer target built by `make fuzz` for FUZZ_SECONDS and prints executions per target.
# Usage: scripts/fuzz.sh SECONDS TARGET...   (targets: config csv jsonl cron)
set -u
seconds=$1; shift
bin=.build-fuzz/release
status=0
summary=""
for target in "$@"; do
    work=.build-fuzz/corpus/$target
    regressions=Fuzz/regressions/$target
    mkdir -p "$work" "$regressions"
    log=.build-fuzz/fuzz-$target.log
    echo "== fuzz-$target for ${seconds}s (log: $log)"
    # New inputs go to the scratch corpus; a crash's input goes to the regression folder, to keep once fixed.
    # Leak checks are off: Foundation's file reading (not instrumented) leaks 4 KiB on an empty file
    # (regressions/config/empty-input-foundation-read-leak), which would end every run at the first input.
    ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
    "$bin/fuzz-$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -detect_leaks=0 \
        -print_final_stats=1 -artifact_prefix="$regressions/" \
        "$work" "Fuzz/corpus/$target" "$regressions" >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    if [ $rc -ne 0 ]; then
        status=1
        echo "   CRASH (exit $rc): see $log and the new file in $regressions/"
        grep -m3 -E 'ERROR|SUMMARY|Fatal error|deadly signal|timeout' "$log" | sed 's/^/   /'
    fi
    summary+=$(printf '%-12s %12s executions  %8s/s  exit %s' "fuzz-$target" "${execs:-?}" "${rate:-?}" "$rc")$'\n'
done
echo
printf '%s' "$summary"
exit $status
