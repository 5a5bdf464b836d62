"""Pure array kernels: numpy arrays and explicit parameters in, arrays out.

No file or network I/O, no settings, no logging. Presets in ``eowatch.detect``
compose them; ``eowatch.io`` does the reading and writing.
"""
