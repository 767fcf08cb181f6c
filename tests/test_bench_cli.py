"""Smoke test of ``aekernels bench``: the command runs and writes valid JSON.

No timing assertions: the benchmark is a benchmark.  Two of the smallest cases, with a
tiny time budget, keep this to a few seconds.
"""
import json

import pytest

from aekernels import bench
from aekernels.cli import main

CASES = "conv/lenet_c3/forward/,pool/pool2x2/avg_pool2d/"


def _run(tmp_path, *extra):
    out = tmp_path / "bench.json"
    argv = ["bench", "--quick", "--budget", "0.01", "--cases", CASES, "--json", str(out), *extra]
    assert main(argv) == 0
    return json.loads(out.read_text())


def test_bench_quick_writes_json(tmp_path, capsys):
    result = _run(tmp_path)
    text = capsys.readouterr().out
    assert "threads" in text and "lenet_c3" in text and "avg_pool2d" in text
    assert result["machine"]["threads"] >= 1
    assert {"cpu", "aekernels_isa", "numpy", "date"} <= set(result["machine"])
    assert result["ceilings"]["gemm_gflops"] and result["ceilings"]["copy_gbps"]["numpy"] > 0
    ids = {r["id"] for r in result["results"]}
    assert ids == {"conv/lenet_c3/forward/NCHW/float32", "pool/pool2x2/avg_pool2d/NCHW/float32"}
    for r in result["results"]:
        assert r["ms"] > 0 and r["rate"] > 0 and r["unit"] in ("GF/s", "GB/s")
        assert r["ratio"] is None  # no --compare


def test_bench_compare_torch(tmp_path):
    pytest.importorskip("torch")
    result = _run(tmp_path, "--compare", "torch", "--threads", "1")
    assert result["machine"]["threads"] == 1 and result["machine"]["torch_threads"] == 1
    for r in result["results"]:
        assert r["torch_ms"] > 0 and r["ratio"] > 0
        if r["backend"] == "native":  # issue 4's targets are for the native backend
            assert r["target"] is not None and r["met"] in (True, False)


def test_cases_cover_the_design_table():
    ids = {c.id for c in bench.cases()}
    assert len(ids) == (9 * 4 + 2 * 5) * 2 * 2
    assert "conv/seed_tf_ae/conv_transpose2d/NHWC/float64" in ids
    assert "pool/pool3x3s2/max_unpool2d/NCHW/float32" in ids


def test_bad_filter_is_an_error():
    with pytest.raises(SystemExit, match="no case matches"):
        main(["bench", "--cases", "no-such-case"])
