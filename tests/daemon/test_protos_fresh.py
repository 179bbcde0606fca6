"""The committed generated modules must match the .proto files (run `make proto` if not)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Lines that name the generator's version: a different grpcio-tools is not a stale contract.
_VERSION_LINES = re.compile(
    r"^(# Protobuf Python Version:.*|GRPC_GENERATED_VERSION = .*|\s+\d+,\s*$)", re.MULTILINE
)


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_modules_are_up_to_date(tmp_path: Path) -> None:
    gen = _load_generator()
    fresh = gen.generate(tmp_path)
    assert fresh, "no modules generated"
    stale = []
    for path in fresh:
        committed = ROOT / path.relative_to(tmp_path)
        if not committed.exists():
            stale.append(f"{committed} is missing")
        elif _VERSION_LINES.sub("", committed.read_text()) != _VERSION_LINES.sub("", path.read_text()):
            stale.append(f"{committed} differs")
    assert not stale, "generated modules are stale (run `make proto`): " + "; ".join(stale)
