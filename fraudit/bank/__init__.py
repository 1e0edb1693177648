"""The weight bank (thesis ch. 4): clean-weight models per layer and reading."""
