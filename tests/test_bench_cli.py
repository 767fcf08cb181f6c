"""Smoke test of ``aekernels bench``: the command runs and writes valid JSON.

No timing assertions: the benchmark is a benchmark.  Two of the smallest cases with a
tiny time budget keep this to a few seconds.
"""
import importlib.util
import json

import pytest

from aekernels import bench
from aekernels.cli import main

CASES = "conv/lenet_c3/forward/,pool/pool2x2/avg_pool2d/"
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def test_bench_quick_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "--quick", "--budget", "0.01", "--cases", CASES, "--json", str(out),
            "--threads", "1"] + (["--compare", "torch"] if HAVE_TORCH else [])
    assert main(argv) == 0
    result = json.loads(out.read_text())
    text = capsys.readouterr().out
    assert "threads 1" in text and "lenet_c3" in text and "avg_pool2d" in text
    assert result["complete"] is True
    m = result["machine"]
    assert m["threads"] == 1 and {"cpu", "aekernels_isa", "numpy", "date"} <= set(m)
    assert result["ceilings"]["gemm_gflops"] and result["ceilings"]["copy_gbps"]["numpy"] > 0
    ids = {r["id"] for r in result["results"]}
    assert ids == {"conv/lenet_c3/forward/NCHW/float32", "pool/pool2x2/avg_pool2d/NCHW/float32"}
    for r in result["results"]:
        assert r["ms"] > 0 and r["rate"] > 0 and r["unit"] in ("GF/s", "GB/s")
        if not HAVE_TORCH:
            assert r["ratio"] is None
            continue
        assert m["torch_threads"] == 1
        assert r["torch_ms"] > 0 and r["ratio"] > 0 and r["check"] == "ok"
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
