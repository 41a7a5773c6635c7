"""Trace files: last write per key wins (a node re-run after a crash), torn lines are skipped."""

from agents.trace import TraceWriter, filter_traces, format_trace, read_traces


def test_rewritten_keys_keep_the_last_record_and_torn_lines_are_skipped(tmp_path):
    tw = TraceWriter(tmp_path, "run-1")
    tw.write(day=3, date="2024-01-04", phase="train", node="direction", ticker="ACME", decision="buy", probs={"buy": 0.6})
    tw.write(day=3, date="2024-01-04", phase="train", node="risk", ticker="ACME", target_weight=0.2)
    tw.write(day=3, date="2024-01-04", phase="train", node="direction", ticker="ACME", decision="hold", probs={"hold": 0.5})
    with (tmp_path / "traces.jsonl").open("a") as fh:
        fh.write('{"key": "4:direction:ACME:0", "day": 4')  # a kill mid-write
    records = read_traces(tmp_path)
    assert [r["node"] for r in records] == ["direction", "risk"]
    assert records[0]["decision"] == "hold"
    assert [r["node"] for r in filter_traces(records, agent="risk")] == ["risk"]
    assert list(filter_traces(records, day="2024-01-04"))
    assert not list(filter_traces(records, day="5"))
    text = format_trace(records[0])
    assert "direction" in text and "hold=0.500" in text
