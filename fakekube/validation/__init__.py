"""Validation of built-in kinds as kube-apiserver does it, one module per concern.

``names`` holds apimachinery's string formats, ``meta`` the ObjectMeta rules, ``decode`` the
typed JSON decoding that happens before anything else, ``quantity`` ``resource.Quantity``; the
other modules validate one group of kinds each. Messages, reasons and field paths are
kube-apiserver 1.33's.
"""
