"""Reading inputs and writing products (the only place that touches GDAL for writing)."""
