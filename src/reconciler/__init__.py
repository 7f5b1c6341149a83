"""The LocustTest reconciler: turns LocustTest resources into a master Service and two Jobs."""

__version__ = "0.1.0"
