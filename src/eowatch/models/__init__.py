"""Shipped change models of the ``s2-learned`` preset (package data): ``NAME-vN.model.txt``
(LightGBM text), ``NAME-vN.card.json`` and ``.card.md`` (model cards); see ``eowatch.learn``."""
