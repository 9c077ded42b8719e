"""The torch training engine shared by every SAE estimator (private)."""
