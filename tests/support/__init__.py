"""Helpers the tests share (real servers started for a test)."""
