"""Builders of the bundled ``hk_tech`` sample from the raw public files (see build_hk_tech.py)."""
