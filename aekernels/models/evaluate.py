"""Per-model test metrics: what ``aekernels train`` reports after training."""
from __future__ import annotations

import numpy as np

from .. import data as D
from .base import Model
from .metrics import confusion_matrix, pca_mse, precision_at_k, roc_auc


def corrupt_for_anomaly(x: np.ndarray, seed: int, layout: str = "flat", side: int = 28) -> np.ndarray:
    """The anomaly test set's outliers: half of the images get a white 8x8 occluding square,
    the other half Gaussian noise (std 0.3, clipped), seeded."""
    rng = np.random.default_rng(seed)
    n = len(x)
    imgs = x.reshape(n, 1, side, side)
    half = n // 2
    occ = D.occlude(imgs[:half], rng, size=max(2, side * 2 // 7), value=1.0)
    noisy = D.add_noise(imgs[half:], rng, std=0.3)
    return np.concatenate([occ, noisy]).reshape(x.shape).astype(x.dtype)


def evaluate(model: Model, split: D.Split, *, seed: int = 0, retrieval: bool = True) -> dict:
    """Test metrics of ``model`` on ``split`` (the arrays shaped as the model expects).

    All autoencoders: ``test_mse`` and, with codes, ``precision_at_10`` (each test image's
    10 nearest training images in code space, fraction with the same digit).
    linear-ae: ``pca_mse`` (PCA with the same code size, fitted on the training set) and
    ``mse_over_pca``.  denoising-ae: ``denoised_mse`` (clean test vs reconstruction of its
    corrupted copy) and ``noisy_input_mse``.  sparse-ae: mean code activation and
    fraction of near-zero units.  anomaly: ``roc_auc`` of reconstruction errors,
    corrupted (occluded or noisy) test images vs the clean ones.  lenet5: ``test_accuracy``
    and ``confusion_matrix``.
    """
    xtr, ytr, xte, yte = split
    out: dict = {}
    if model.kind == "classifier":
        pred = model.predict(xte).argmax(1)
        out["test_accuracy"] = float(np.mean(pred == yte))
        out["confusion_matrix"] = confusion_matrix(yte, pred, int(max(yte.max(), pred.max()) + 1)).tolist()
        return out
    out["test_mse"] = model.score(xte)
    name = model.name
    if retrieval and model.code_index is not None:
        out["precision_at_10"] = precision_at_k(model.encode(xte), yte, model.encode(xtr), ytr, k=10)
    if name == "linear-ae":
        out["pca_mse"] = pca_mse(xtr, xte, model.config["code"])
        out["mse_over_pca"] = out["test_mse"] / out["pca_mse"]
    if name == "denoising-ae":
        rng = np.random.default_rng(seed + 99)
        level = model.config["noise_level"]
        noisy = (D.add_noise(xte, rng, std=level) if model.config["noise"] == "gaussian"
                 else D.mask_noise(xte, rng, p=level))
        rec = model.predict(noisy)
        out["denoised_mse"] = float(np.mean((rec - xte) ** 2))
        out["noisy_input_mse"] = float(np.mean((noisy - xte) ** 2))
    if name == "sparse-ae":
        codes = model.encode(xte)
        out["mean_code_activation"] = float(codes.mean())
        thr = 0.0 if model.config["sparsity"] == "l1" else 0.1
        out["fraction_inactive"] = float(np.mean(codes <= thr))
    if name == "anomaly":
        side = int(round(np.sqrt(xte.reshape(len(xte), -1).shape[1])))
        bad = corrupt_for_anomaly(xte, seed + 7, side=side)
        scores = np.concatenate([model.reconstruction_errors(xte), model.reconstruction_errors(bad)])
        labels = np.r_[np.zeros(len(xte)), np.ones(len(bad))]
        out["roc_auc"] = roc_auc(scores, labels)
        half = len(bad) // 2
        out["roc_auc_occluded"] = roc_auc(np.r_[scores[:len(xte)], scores[len(xte):len(xte) + half]],
                                          np.r_[np.zeros(len(xte)), np.ones(half)])
        out["roc_auc_noisy"] = roc_auc(np.r_[scores[:len(xte)], scores[len(xte) + half:]],
                                       np.r_[np.zeros(len(xte)), np.ones(len(bad) - half)])
    return out
