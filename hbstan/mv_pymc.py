"""PyMC for a multivariate model (placeholder, filled in below)."""
