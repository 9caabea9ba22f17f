"""Benchmarks (not tests): training, inference and serving figures for the notes."""
