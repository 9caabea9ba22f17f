"""Custom TFMA metrics (TFMA has no per-query precision/recall/F1@K for binary clicks)."""
