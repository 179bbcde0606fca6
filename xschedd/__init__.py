"""xschedd: the global scheduler daemon. Its `policy` package is pure and shared with preempt."""
