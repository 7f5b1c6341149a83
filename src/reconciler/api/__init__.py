"""The LocustTest API beyond its schema: v2 into the internal model, v1 ⇄ v2 conversion, and the
rules upstream's validating webhook enforced.

`reconciler.spec` keeps the model and the one entry point, `parse`, which uses these modules.
"""
