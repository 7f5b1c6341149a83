"""The LocustTest API: the model (`types`), child names (`naming`), one way in (`parse`: any
served version, checked against the CRD's schema, converted to v2, validated), v1 <-> v2
conversion, and the rules upstream's validating webhook enforced.
"""
