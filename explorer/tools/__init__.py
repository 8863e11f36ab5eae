"""Tools that are not the product: benchmarks, the models report, hostile-input counts.

``attention-explorer bench`` and ``report`` are thin commands over these modules."""
