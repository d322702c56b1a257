"""Optimise: weights from objectives and constraints, solved in batches by the Rust core."""

from indexlab.optimise.fastpath import FastSolution, capped_qp_batch

__all__ = ["FastSolution", "capped_qp_batch"]
