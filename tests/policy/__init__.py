"""Unit tests of the pure scheduling policies."""
