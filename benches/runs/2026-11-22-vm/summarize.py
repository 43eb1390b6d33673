#!/usr/bin/env python3
"""Prints the pipeline-bench table of one run from its copied criterion estimates.

Usage: python3 summarize.py run-2   (a directory holding criterion/<group>/<case>/new/*.json)
Mpps and ns/packet come from criterion's mean (and median) time per iteration and the
iteration's packet count (`throughput.Elements` in benchmark.json).
"""

import json
import pathlib
import sys

run = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "run-2")
rows = {}
for est in sorted(run.glob("criterion/*/**/new/estimates.json")):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    elements = (bench.get("throughput") or {}).get("Elements")
    if not elements or bench["group_id"] not in ("decode", "decode_flow", "flow_table", "pipeline"):
        continue
    e = json.loads(est.read_text())
    mean, median = e["mean"], e["median"]
    lo = mean["confidence_interval"]["lower_bound"]
    hi = mean["confidence_interval"]["upper_bound"]
    rows[bench["full_id"]] = {
        "packets": elements,
        "ns_mean": mean["point_estimate"] / elements,
        "ns_median": median["point_estimate"] / elements,
        "ns_lo": lo / elements,
        "ns_hi": hi / elements,
    }

order = ["decode", "decode_flow", "flow_table", "pipeline"]
print("| case | packets | Mpps (mean) | ns/packet mean [95% CI] | ns/packet median | vs 67.2 ns budget |")
print("|---|---:|---:|---:|---:|---:|")
for group in order:
    variant = {"plain": 0, "vxlan": 1, "erspan2": 2}
    cases = [k for k in rows if k.split("/")[0] == group]
    cases.sort(key=lambda k: (k.split("/")[2:], variant.get(k.split("/")[1], 9)))
    for case in cases:
        r = rows[case]
        print(
            f"| {case} | {r['packets']:,} | {1e3 / r['ns_mean']:.2f} | "
            f"{r['ns_mean']:.0f} [{r['ns_lo']:.0f}, {r['ns_hi']:.0f}] | {r['ns_median']:.0f} | "
            f"{r['ns_mean'] / (1e9 / 14_880_952):.1f}x |"
        )

print()
print("| ratio (throughput, encapsulated / plain, same run) | vxlan | erspan2 |")
print("|---|---:|---:|")
for prefix, suffix in [("decode", ""), ("decode_flow", ""), ("pipeline", "/1"), ("pipeline", "/2")]:
    plain = rows.get(f"{prefix}/plain{suffix}")
    if not plain:
        continue
    cells = []
    for enc in ("vxlan", "erspan2"):
        r = rows.get(f"{prefix}/{enc}{suffix}")
        cells.append(f"{plain['ns_mean'] / r['ns_mean']:.2f}" if r else "-")
    print(f"| {prefix}{suffix} | {cells[0]} | {cells[1]} |")
