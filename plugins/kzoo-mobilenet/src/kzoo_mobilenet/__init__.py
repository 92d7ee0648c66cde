"""kzoo-mobilenet: MobileNet v1 and SqueezeNet 1.1 for kzoo, registered through entry points.

Importing this package imports nothing heavy; kzoo imports ``kzoo_mobilenet.mobilenet`` or
``kzoo_mobilenet.squeezenet`` when one of their models is built, and ``kzoo_mobilenet.layers`` before it
loads a ``.keras`` file.
"""

__version__ = "0.1.0"
