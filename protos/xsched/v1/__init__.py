"""Package xsched.v1: the .proto files and their generated modules (scripts/gen_protos.py)."""
