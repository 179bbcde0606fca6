"""The wire contract (package xsched.v1) and its generated modules (arrive with the daemon issue)."""
