"""The metric core (numpy and scipy, no torch): the quantities the papers define, on arrays.

``rank`` (Gram matrices on a quadrature, eps-rank, spectra), ``bounds`` (loss lower bounds),
``quadrature`` (points and weights on a domain), ``stairs`` (stair segmentation, a description),
``steptest`` (the A1-A3 statistics and their nulls), ``linalg`` (weight-matrix quantities of
papers B and C), ``schedule`` (when a run measures). Imports nothing else of the package.
See docs/design.md, "The quantities".
"""
