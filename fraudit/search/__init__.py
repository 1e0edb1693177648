"""Behavioural trigger search: optimised patches, read against the candidate itself."""
