"""Networks: stacked models (one model per seed along a leading axis, trained as one).

``stacked`` (``StackedNet``, the base class every network derives from: the model axis, the layer
parameters, the per-seed initialisation), ``mlp`` (``StackedMLP``, the plain stacked network, and
its activations), ``architectures`` (residual, Fourier-feature and normalised variants,
``build_model`` from a config's ``model:``), ``bias_free`` (the bias-free nets of papers B and C),
``init`` (initial weights), ``forward_laplacian`` (exact input Laplacians for PDE losses).
Imports only problems, records, core, errors.
"""
