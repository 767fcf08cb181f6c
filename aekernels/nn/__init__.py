"""Neural-network layers on the aekernels kernels: forward/backward, params/grads.

Every layer has ``forward(x)``, ``backward(grad) -> grad_input``, ``params()`` and
``grads()`` (lists of arrays; backward writes the gradients, optimisers update the
parameters in place), and ``train()``/``eval()``.  Convolution and pooling run on the
public kernels (``aekernels.conv2d``, ``max_pool2d``, ...) of whichever backend is
active.  float32 by default; pass ``dtype=np.float64`` for gradient checks.
``Sequential`` runs ReLU -> MaxPool2d pool-first (and takes a preceding Conv2d's bias
gradient from the pooled gradient): same results, a quarter of the element-wise work.
"""
from .activations import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .conv import Conv2d, ConvTranspose2d
from .init import INITS, init_weight
from .linear import Flatten, Linear, Reshape
from .losses import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, KLSparsityPenalty,
                     L1ActivityPenalty, Loss, MSELoss, penalty_layers)
from .module import Layer, Sequential, count_params, flatten_parameters
from .noise import Dropout, GaussianNoise, MaskingNoise
from .norm import BatchNorm1d, BatchNorm2d
from .optim import SGD, Adam, Optimizer
from .pool import AvgPool2d, MaxPool2d, MaxUnpool2d, Upsample

__all__ = [
    "Adam", "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d",
    "Conv2d", "ConvTranspose2d", "CrossEntropyLoss", "Dropout", "Flatten", "GaussianNoise",
    "INITS", "KLSparsityPenalty", "L1ActivityPenalty", "Layer", "LeakyReLU", "Linear", "Loss",
    "MSELoss", "MaskingNoise", "MaxPool2d", "MaxUnpool2d", "Optimizer", "ReLU", "Reshape",
    "SGD", "Sequential", "Sigmoid", "Softmax", "Tanh", "Upsample", "count_params",
    "flatten_parameters", "init_weight", "penalty_layers",
]
