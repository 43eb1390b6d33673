# Shared by the bench scripts (sourced, not run).

# median: the median of the numbers on standard input, one per line ("n/a" when none).
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) printf "%.3g\n", v[(NR + 1) / 2]; else printf "%.3g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
