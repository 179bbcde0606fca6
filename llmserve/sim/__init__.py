"""The simulator: workloads in, the real scheduler on the cost-model executor, trace and
Markdown report out (BENCHMARKS.md section 8)."""
