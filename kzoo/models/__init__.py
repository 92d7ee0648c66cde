"""The built-in zoo: one module per architecture family.

Each module imports only ``keras`` (and kzoo's own keras-only layers), and holds, top to bottom: a docstring
with the paper, ``MODEL_CARD`` (what the family shares), ``SPECS`` (one row per variant), private block
functions, one generic builder, and one short public builder per variant. ``MODEL_CARD`` and ``SPECS`` are
plain literals: the registry reads them from the source without importing the module.

Nothing is imported here, so that reading metadata never pulls in keras.
"""
