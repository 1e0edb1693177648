"""Model pairing (thesis ch. 5, appendix C): translate a candidate's embeddings into a
trusted model's space and watch for disagreement."""
