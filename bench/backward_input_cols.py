"""NCHW backward-input to few dX channels, aekernels vs PyTorch in one process: the cols
path (direct_conv_backward_input_cols: ae_enc1, seed_tf_ae, stem_s2) and the flipped
row-block forward (lenet_c1).

    OPENBLAS_NUM_THREADS=1 python bench/backward_input_cols.py [case,...] [f32,f64]

NT=threads (default 1), REPS=calls per median (default 20); the best of three medians of
CPU time (process_time: less inflated than wall time when other processes share the
cores).  A script, not a test: never assert on its times.
"""
import sys, time, os
import numpy as np, torch
import aekernels
aekernels.set_num_threads(int(os.environ.get("NT", "1"))); torch.set_num_threads(int(os.environ.get("NT", "1")))
CASES = {
 "ae_enc1": (128, 1, 28, 28, 32, 3, 1, 1),
 "seed_tf_ae": (16, 1, 145, 145, 32, 4, 1, 0),
 "stem_s2": (8, 3, 112, 112, 32, 3, 2, 1),
 "lenet_c1": (64, 1, 32, 32, 6, 5, 1, 0),
}
sel = sys.argv[1].split(",") if len(sys.argv) > 1 else list(CASES)
dts = sys.argv[2].split(",") if len(sys.argv) > 2 else ["f32", "f64"]
reps = int(os.environ.get("REPS", "20"))
def med(f, reps):
    f(); f()
    ts = []
    for _ in range(reps):
        t = time.process_time(); f(); ts.append(time.process_time() - t)
    return np.median(ts) * 1e3
for name in sel:
    n, c, h, w, k, ks, s, p = CASES[name]
    for dt in dts:
        npdt = np.float32 if dt == "f32" else np.float64
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, c, h, w)).astype(npdt)
        wt = rng.standard_normal((k, c, ks, ks)).astype(npdt)
        tx = torch.from_numpy(x); tw = torch.from_numpy(wt)
        oh = (h + 2 * p - ks) // s + 1; ow = (w + 2 * p - ks) // s + 1
        gy = rng.standard_normal((n, k, oh, ow)).astype(npdt); tgy = torch.from_numpy(gy)
        out = np.empty_like(x)
        fa = lambda: aekernels.conv2d_backward_input(gy, wt, x.shape, stride=s, padding=p, out=out)
        ft = lambda: torch.nn.grad.conv2d_input(x.shape, tw, tgy, stride=s, padding=p)
        ref = ft().numpy(); got = fa()
        err = np.abs(got - ref).max() / (np.abs(ref).max())
        ta, tt = [], []
        for _ in range(3):
            ta.append(med(fa, reps)); tt.append(med(ft, reps))
        a, t = min(ta), min(tt)
        gf = 2 * n * k * c * oh * ow * ks * ks / (a * 1e-3) / 1e9
        print(f"{name:11s} {dt} native {a:8.3f} ms  torch {t:8.3f} ms  ratio {a/t:5.2f}  {gf:6.1f} GF/s  relerr {err:.1e}", flush=True)
