"""Trainable models built from aekernels.nn: the autoencoders and CNNs of DESIGN.md.

>>> from aekernels import models, data
>>> d = data.load_mnist5k(layout="NCHW")
>>> m = models.build("conv-ae", seed=0)
>>> m.fit(d.x_train, epochs=5, validation=(d.x_test,))
>>> m.save("conv-ae.npz"); m2 = models.load("conv-ae.npz")
"""
from .base import History, Model, load
from .evaluate import evaluate
from .metrics import confusion_matrix, pca_mse, precision_at_k, roc_auc
from .zoo import (MODELS, StackedAE, anomaly_ae, build, conv_ae, dense_ae, denoising_ae, lenet5,
                  linear_ae, seed_ae_145, sparse_ae, stacked_ae)

__all__ = [
    "History", "MODELS", "Model", "StackedAE", "anomaly_ae", "build", "confusion_matrix",
    "conv_ae", "dense_ae", "denoising_ae", "evaluate", "lenet5", "linear_ae", "load", "pca_mse",
    "precision_at_k", "roc_auc", "seed_ae_145", "sparse_ae", "stacked_ae",
]
