"""Networks: stacked models (one model per seed along a leading axis, trained as one).

``stacked`` (``StackedNet``, the base class: the model axis, the parameter layout, one seeded
generator per member), ``mlp`` (``StackedMLP`` and its activations), ``architectures`` (residual,
Fourier-feature, modified and normalised variants; ``build_model`` from a config's ``model:``),
``bias_free`` (the bias-free nets of papers B and C), ``init`` (initial weights),
``forward_laplacian`` (exact input Laplacians carried through the layers, for PDE losses).
Imports only problems, records, core, errors.
"""

# The activations StackedMLP knows (the keys of mlp.ACTIVATIONS, which holds their torch functions;
# tests/test_models.py keeps the two equal): the config's validation checks a name without torch.
ACTIVATION_NAMES = ("tanh", "sin", "relu", "sigmoid", "gelu")
