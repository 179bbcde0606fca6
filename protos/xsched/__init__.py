"""xsched wire contract, version 1."""
