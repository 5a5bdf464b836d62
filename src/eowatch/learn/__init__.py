"""The learned Sentinel-2 change model: labelled pairs (``pairs``), training (``train``)
and versioned artifacts with model cards (``artifact``). Used by the ``s2-learned``
preset, ``eowatch train`` and ``eowatch evaluate --cv``."""
