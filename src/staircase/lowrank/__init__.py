"""Papers B and C: low-rank bias of weight matrices (not paper A's feature Gram matrices).

* B. Zangrando et al., *Neural Rank Collapse*, arXiv 2402.03991 - with coupled L2 weight decay
  lambda, at a stationary point each layer's weights are close to rank K (K classes), by an amount
  governed by the within-class variability of the layer's input. ``collapse`` trains bias-free
  ReLU MLPs with cross-entropy and full-batch SGD with momentum over a grid of lambda (and of data
  noise), stacked along a model axis, and measures every layer.
* C. Le & Jegelka, *Training invariances and the low-rank phenomenon*, arXiv 2201.11968 - with
  exponential/logistic loss on linearly separable data, the linear layers after the last ReLU
  converge to rank 1 and align, driven by the conserved quantity W_{k+1}^T W_{k+1} - W_k W_k^T.
  ``alignment`` trains bias-free ReLU-then-linear nets (gradient descent and normalised gradient
  descent, float64) and measures every layer and adjacent pair over training.

Modules: ``data`` (digits, Gaussian mixtures, separable sets), ``nets`` (the bias-free stacked
network shared by both), ``linalg`` (distance to rank K, alignment, invariance drift; spectra-based
ranks come from ``staircase.rank``), ``settings`` (the ``rank_collapse:`` and ``alignment:`` config
sections -> one resolved config per study), ``collapse``, ``alignment``, ``claims`` (verdicts of
B1-B3 and C1-C3 from the files the runs wrote, as ``staircase.verdicts`` rows), ``calibration``
(the false-positive rates of those tests under their null models), ``cli``.
"""
