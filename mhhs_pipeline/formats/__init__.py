"""Encoders: Arrow tables in canonical columns -> bytes. Pure, no I/O."""
