"""xsched-workload: the standard load generator for tests, demos and benchmarks."""
