"""The `llmserve` console script: bad requests files fail with line numbers and exit 2;
good runs write the trace, the report and its plots; gen-burst makes a valid workload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmserve.cli import main
from llmserve.errors import RequestFileError
from llmserve.sim.workload import parse_requests

GOOD = '{"id": "r1", "arrival_s": 0.0, "prompt_tokens": 64, "max_tokens": 8}'


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "requests.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["r2", 0.0, 64, 8]', "expected a JSON object, got list"),
        ('{"id": "r2", "arrival_s": 0.0, "max_tokens": 8}', "missing field 'prompt_tokens'"),
        (
            '{"id": "r2", "arrival_s": 0.0, "prompt_tokens": "64", "max_tokens": 8}',
            "'prompt_tokens' must be an integer >= 1, got '64'",
        ),
        (
            '{"id": "r2", "arrival_s": -1.5, "prompt_tokens": 64, "max_tokens": 8}',
            "'arrival_s' must be a number >= 0, got -1.5",
        ),
        (
            '{"id": "r2", "arrival_s": 0.0, "prompt_tokens": 64, "max_tokens": -3}',
            "'max_tokens' must be an integer >= 1, got -3",
        ),
        (
            '{"id": "r2", "arrival_s": 0.0, "prompt_tokens": 64, "max_tokens": 8, "priority": 1.5}',
            "'priority' must be an integer, got 1.5",
        ),
        (
            '{"id": "r2", "arrival_s": 0, "prompt_tokens": 64, "max_tokens": 8, "ttft_slo_ms": 0}',
            "'ttft_slo_ms' must be a number > 0",
        ),
        ('{"id": "r2", "arrival_s": NaN, "prompt_tokens": 64, "max_tokens": 8}', "not valid JSON"),
        (
            '{"id": "r2", "arrival_s": 0, "prompt_tokens": 64, "max_tokens": 8, "max_token": 9}',
            "unknown field(s) 'max_token'",
        ),
        (
            '{"id": "r1", "arrival_s": 1.0, "prompt_tokens": 64, "max_tokens": 8}',
            "duplicate id 'r1' (first on line 1)",
        ),
    ],
)
def test_a_bad_line_is_reported_with_its_line_number_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad_line: str, message: str
) -> None:
    path = write(tmp_path, GOOD, "", bad_line)
    code = main(["simulate", "--requests", str(path), "--kv-blocks", "64"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{path}:3: " in err
    assert message in err


def test_every_bad_line_is_reported_not_just_the_first(tmp_path: Path, capsys) -> None:
    path = write(
        tmp_path,
        GOOD,
        "oops",
        '{"id": "r2", "arrival_s": 0.0, "prompt_tokens": 0, "max_tokens": 8}',
        '{"id": "r3", "arrival_s": 0.0, "prompt_tokens": 5, "max_tokens": 8}',
        '{"id": "", "arrival_s": 0.0, "prompt_tokens": 5, "max_tokens": 8}',
    )
    assert main(["simulate", "--requests", str(path)]) == 2
    err = capsys.readouterr().err
    for lineno in (2, 3, 5):
        assert f"requests.jsonl:{lineno}: " in err
    assert "requests.jsonl:4:" not in err and "requests.jsonl:1:" not in err


def test_parse_requests_raises_one_error_listing_all_problems() -> None:
    with pytest.raises(RequestFileError) as info:
        parse_requests(["{}", GOOD, "3"], source="mem")
    problems = info.value.problems
    assert [n for n, _ in problems] == [1, 1, 1, 1, 3]  # four missing fields, then a number
    assert "mem:3: expected a JSON object, got int" in str(info.value)


def test_an_empty_file_missing_file_and_bad_arguments_exit_2(tmp_path: Path, capsys) -> None:
    empty = write(tmp_path, "")
    assert main(["simulate", "--requests", str(empty)]) == 2
    assert "holds no requests" in capsys.readouterr().err
    assert main(["simulate", "--requests", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl" in capsys.readouterr().err
    good = write(tmp_path, GOOD)
    assert main(["simulate", "--requests", str(good), "--policy", "fcfs,lifo"]) == 2
    assert "unknown policy 'lifo'" in capsys.readouterr().err
    assert main(["simulate", "--requests", str(good), "--kv-blocks", "0"]) == 2
    assert main(["simulate", "--requests", str(good), "--cost-model", '{"base_ms": -1}']) == 2
    assert "base_ms must be a finite number >= 0, got -1" in capsys.readouterr().err


def test_gen_burst_then_simulate_writes_trace_report_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gen-burst", "--n", "12", "--seed", "0"]) == 0
    text = capsys.readouterr().out
    assert main(["gen-burst", "--n", "12", "--seed", "0"]) == 0
    assert capsys.readouterr().out == text, "gen-burst is not deterministic"
    requests = tmp_path / "requests.jsonl"
    requests.write_text(text, encoding="utf-8")
    assert len(parse_requests(text.splitlines())) == 12

    trace, report = tmp_path / "trace.jsonl", tmp_path / "out" / "report.md"
    code = main([
        "simulate", "--requests", str(requests), "--policy", "fcfs,cfs",
        "--kv-blocks", "200", "--block-size", "16",
        "--trace", str(trace), "--report", str(report),
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "fcfs" in out and "cfs" in out
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    assert {e["policy"] for e in events} == {"fcfs", "cfs"}
    assert sum(e["event"] == "finish" for e in events) == 24
    md = report.read_text()
    for needle in (
        "TTFT P99",
        "TPOT P50",
        "tokens/s",
        "rejected",
        "KV mean / peak",
        "simulated requests/s",
        "report_ttft.png",
        "report_kv.png",
        "## Against FCFS",
    ):
        assert needle in md
    for png in ("report_ttft.png", "report_kv.png"):
        data = (report.parent / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "simulate" in capsys.readouterr().out
