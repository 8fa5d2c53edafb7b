# What the benchmark scripts share; sourced, not run.

# median: the median of the numbers on standard input (separated by spaces or newlines), to
# six decimals; prints nothing and fails when there are none.
median() {
  tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {
    if (NR == 0) exit 1
    printf "%.6f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
