# Summarize busted's TAP output (busted -o TAP).
#
#   awk -v mode=counts -f scripts/tap-summary.awk FILE
#     prints "PASSED FAILED SKIPPED PLANNED", where PLANNED is the count of
#     the closing "1..N" line, or -1 when that line is missing (busted
#     stopped before the end of the suite).
#   awk -v mode=failures -f scripts/tap-summary.awk FILE
#     prints each "not ok" line with the "#" diagnostic lines after it.
#
# Only lines that start with a TAP keyword count, so text that specs print
# on stdout is ignored unless it starts a line with "ok N - ".

/^not ok [0-9]+ - / {
  failed++
  in_failure = 1
  if (mode == "failures") print
  next
}

/^ok [0-9]+ - # SKIP/ {
  skipped++
  in_failure = 0
  next
}

/^ok [0-9]+ - / {
  passed++
  in_failure = 0
  next
}

/^1\.\.[0-9]+$/ {
  planned = substr($0, 4) + 0
  in_failure = 0
  next
}

/^#/ {
  if (in_failure && mode == "failures") print
  next
}

{ in_failure = 0 }

END {
  if (mode == "counts") {
    if (planned == "") planned = -1
    printf "%d %d %d %d\n", passed, failed, skipped, planned
  }
}
