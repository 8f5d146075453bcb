"""Networks: stacked models (one model per seed along a leading axis, trained as one).

``mlp`` (``StackedMLP``, the plain stacked network, and its activations), ``architectures``
(residual, Fourier-feature and normalised variants, ``build_model`` from a config's ``model:``),
``bias_free`` (the bias-free nets of papers B and C), ``init`` (initial weights).
Imports only problems, records, core, errors.
"""
